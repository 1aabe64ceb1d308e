# The rejected-events queue moved into module.rejected_events_queue (modules/sqs-queue).
moved {
  from = aws_sqs_queue.rejected
  to   = module.rejected_events_queue.aws_sqs_queue.this
}
