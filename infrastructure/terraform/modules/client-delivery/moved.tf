# The client's queue, its DLQ and their policies moved into module.queue (modules/sqs-queue).
moved {
  from = aws_sqs_queue.this
  to   = module.queue.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue.dlq
  to   = module.queue.aws_sqs_queue.dlq[0]
}

moved {
  from = aws_sqs_queue_redrive_allow_policy.dlq
  to   = module.queue.aws_sqs_queue_redrive_allow_policy.dlq[0]
}

moved {
  from = aws_sqs_queue_policy.this
  to   = module.queue.aws_sqs_queue_policy.this[0]
}

moved {
  from = aws_sqs_queue_policy.dlq
  to   = module.queue.aws_sqs_queue_policy.dlq[0]
}
