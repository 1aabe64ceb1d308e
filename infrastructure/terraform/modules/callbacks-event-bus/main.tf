resource "aws_cloudwatch_event_bus" "this" {
  name               = "${var.name_prefix}-callbacks"
  kms_key_identifier = var.kms_key_arn
  tags               = var.tags
}

resource "aws_cloudwatch_event_archive" "this" {
  name             = "${var.name_prefix}-callbacks"
  description      = "Every event on the Callbacks Event Bus, for replay after a delivery incident."
  event_source_arn = aws_cloudwatch_event_bus.this.arn
  retention_days   = var.archive_retention_days

  # The archive is encrypted by EventBridge. Encrypting it with the bus's
  # customer managed key (argument kms_key_identifier) needs AWS provider 6.x;
  # add it when the component moves to that provider.
}
