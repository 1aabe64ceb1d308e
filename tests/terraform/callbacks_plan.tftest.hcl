# Plans infrastructure/terraform/components/callbacks against a mocked AWS
# provider (no credentials, no network) with examples/two-clients.tfvars, and
# checks what the wiring renders. Kept out of the component (checkov cannot
# parse .tftest.hcl): tests/terraform/test_terraform.py copies the tree to a
# temporary directory, puts this file in components/callbacks/tests/ and runs
#   terraform init -backend=false -plugin-dir=$TF_PLUGIN_DIR
#   terraform test -var-file=examples/two-clients.tfvars \
#     -var transform_filter_lambda_zip=<any .zip> -var delivery_lambda_zip=<any .zip>

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:user/test"
      user_id    = "AIDATEST"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition  = "aws"
      dns_suffix = "amazonaws.com"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  client_api_keys = {
    "client-a/target-1"    = "key-a-1"
    "client-b/primary"     = "key-b-primary"
    "client-b/high-volume" = "key-b-high-volume"
  }
}

run "plan_two_clients" {
  command = plan

  assert {
    condition     = keys(module.api_destinations) == ["client-a", "client-b"]
    error_message = "api_destinations must have one instance per client with api-destination targets, keyed by clientId."
  }

  assert {
    condition     = keys(module.client_delivery) == ["client-b"]
    error_message = "client_delivery must have one instance per client with https targets, keyed by clientId."
  }

  assert {
    condition     = length(module.delivery_lambda) == 1
    error_message = "The delivery Lambda must exist when a target uses https mode."
  }

  assert {
    condition     = keys(output.target_event_patterns) == ["client-a/target-1", "client-b/high-volume", "client-b/primary"]
    error_message = "Every target must have exactly one rule, in the module of its delivery mode."
  }

  assert {
    condition = alltrue([
      for key, pattern in output.target_event_patterns : jsondecode(pattern) == jsondecode(
        replace(
          replace(
            jsonencode(jsondecode(file("${path.module}/../../../../tests/fixtures/eventbridge-routing.json")).targetPatternTemplate),
            "$${clientId}", split("/", key)[0]
          ),
          "$${targetId}", split("/", key)[1]
        )
      )
    ])
    error_message = "A per-target rule pattern differs from targetPatternTemplate in tests/fixtures/eventbridge-routing.json."
  }

  assert {
    condition     = jsondecode(output.shared_bus_event_pattern) == jsondecode(file("${path.module}/../../../../tests/fixtures/eventbridge-routing.json")).sharedBusPattern
    error_message = "The Shared Event Bus pattern differs from sharedBusPattern in tests/fixtures/eventbridge-routing.json."
  }

  assert {
    condition     = module.api_destinations["client-b"].api_destination_arns != null && length(module.api_destinations["client-b"].rule_names) == 1
    error_message = "client-b's https target must not get an API destination."
  }

  assert {
    condition     = module.client_delivery["client-b"].maximum_concurrency == 2
    error_message = "maximum_concurrency must be the https targets' summed invocationRateLimit / 10, at least 2."
  }

  assert {
    condition     = module.client_delivery["client-b"].message_retention_seconds == 14400
    error_message = "A 2-hour retry budget keeps the default 4-hour queue retention."
  }

  assert {
    condition     = keys(output.dlq_arns) == ["api-destination/client-a", "api-destination/client-b", "callback-event-queue", "https/client-b"]
    error_message = "Every DLQ must be listed per client."
  }

  assert {
    condition     = keys(aws_cloudwatch_metric_alarm.dlq_depth) == keys(output.dlq_arns) && keys(aws_cloudwatch_metric_alarm.dlq_age) == keys(output.dlq_arns)
    error_message = "Every DLQ needs a depth and an age alarm."
  }

  assert {
    condition     = keys(aws_cloudwatch_metric_alarm.lambda_errors) == ["delivery", "transform-filter"] && keys(aws_cloudwatch_metric_alarm.lambda_throttles) == ["delivery", "transform-filter"]
    error_message = "Both Lambdas need error and throttle alarms."
  }

  assert {
    condition     = keys(module.client_config_storage.object_keys) == ["client-a", "client-b"]
    error_message = "One config object per client."
  }

  assert {
    condition = nonsensitive(
      module.client_config_storage.documents["client-b"].targets[0].apiKey == { headerName = "x-api-key", headerValue = "key-b-primary" }
      && !can(module.client_config_storage.documents["client-b"].applicationId)
      && !can(module.client_config_storage.documents["client-b"].targets[0].delivery)
      && module.client_config_storage.documents["client-b"].targets[1].delivery.mode == "https"
      && !strcontains(jsonencode(module.client_config_storage.documents), "null")
    )
    error_message = "The rendered config documents must carry the API key from client_api_keys and leave out absent optional fields (no nulls)."
  }

  assert {
    condition     = nonsensitive(jsonencode(module.client_config_storage.documents["client-a"].subscriptions)) == jsonencode([{ messageStatuses = ["DELIVERED", "FAILED"], subscriptionId = "sub-1", subscriptionType = "MessageStatus", targetIds = ["target-1"] }, { channelStatuses = ["DELIVERED"], channelType = "NHSAPP", subscriptionId = "sub-2", subscriptionType = "ChannelStatus", supplierStatuses = ["read"], targetIds = ["target-1"] }])
    error_message = "client-a's subscriptions must be rendered as given in clients."
  }
}

run "missing_api_key_is_refused" {
  command = plan

  variables {
    client_api_keys = {
      "client-a/target-1" = "key-a-1"
      "client-b/primary"  = "key-b-primary"
    }
  }

  expect_failures = [output.client_config_object_keys]
}

run "api_key_in_clients_is_refused" {
  command = plan

  variables {
    clients = {
      "client-c" = {
        clientId      = "client-c"
        applicationId = "app-c"
        subscriptions = []
        targets = [{
          targetId            = "t"
          type                = "API"
          invocationEndpoint  = "https://c.example/cb"
          invocationMethod    = "POST"
          invocationRateLimit = 1
          apiKey              = { headerName = "x-api-key", headerValue = "in-clear" }
        }]
      }
    }
  }

  expect_failures = [var.clients]
}

run "key_must_equal_client_id" {
  command = plan

  variables {
    clients = {
      "client-c" = {
        clientId      = "client-d"
        subscriptions = []
        targets = [{
          targetId            = "t"
          type                = "API"
          invocationEndpoint  = "https://c.example/cb"
          invocationMethod    = "POST"
          invocationRateLimit = 1
          apiKey              = { headerName = "x-api-key" }
        }]
      }
    }
  }

  expect_failures = [var.clients]
}

run "api_destination_only_has_no_delivery_lambda" {
  command = plan

  variables {
    clients = {
      "client-c" = {
        clientId      = "client-c"
        applicationId = "app-c"
        subscriptions = [{ subscriptionId = "s", subscriptionType = "MessageStatus", messageStatuses = ["DELIVERED"], targetIds = ["t"] }]
        targets = [{
          targetId            = "t"
          type                = "API"
          invocationEndpoint  = "https://c.example/cb"
          invocationMethod    = "POST"
          invocationRateLimit = 1
          apiKey              = { headerName = "x-api-key" }
        }]
      }
    }
    client_api_keys = { "client-c/t" = "k" }
  }

  assert {
    condition     = length(module.delivery_lambda) == 0 && length(module.client_delivery) == 0 && keys(module.api_destinations) == ["client-c"]
    error_message = "Without https targets there must be no delivery Lambda and no client-delivery instance."
  }
}

run "queue_retention_covers_the_longest_retry_budget" {
  command = plan

  variables {
    clients = {
      "client-c" = {
        clientId      = "client-c"
        applicationId = "app-c"
        subscriptions = [{ subscriptionId = "s", subscriptionType = "MessageStatus", messageStatuses = ["DELIVERED"], targetIds = ["short", "long", "default"] }]
        targets = [
          {
            targetId            = "short"
            type                = "API"
            invocationEndpoint  = "https://c.example/short"
            invocationMethod    = "POST"
            invocationRateLimit = 1
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "https", maxRetryDurationSeconds = 600 }
          },
          {
            targetId            = "long"
            type                = "API"
            invocationEndpoint  = "https://c.example/long"
            invocationMethod    = "POST"
            invocationRateLimit = 1
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "https", maxRetryDurationSeconds = 86400 }
          },
          {
            targetId            = "default"
            type                = "API"
            invocationEndpoint  = "https://c.example/default"
            invocationMethod    = "POST"
            invocationRateLimit = 1
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "https" }
          },
        ]
      }
    }
    client_api_keys = { "client-c/short" = "k1", "client-c/long" = "k2", "client-c/default" = "k3" }
  }

  assert {
    condition     = module.client_delivery["client-c"].message_retention_seconds == 90000
    error_message = "The queue must keep callbacks for the longest retry budget (24 h) plus an hour."
  }
}

run "maximum_concurrency_is_one_environment_per_ten_per_second" {
  command = plan

  variables {
    clients = {
      "client-c" = {
        clientId      = "client-c"
        applicationId = "app-c"
        subscriptions = [{ subscriptionId = "s", subscriptionType = "MessageStatus", messageStatuses = ["DELIVERED"], targetIds = ["a", "b"] }]
        targets = [
          {
            targetId            = "a"
            type                = "API"
            invocationEndpoint  = "https://c.example/a"
            invocationMethod    = "POST"
            invocationRateLimit = 150
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "https" }
          },
          {
            targetId            = "b"
            type                = "API"
            invocationEndpoint  = "https://c.example/b"
            invocationMethod    = "POST"
            invocationRateLimit = 1
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "https" }
          },
        ]
      }
    }
    client_api_keys = { "client-c/a" = "k1", "client-c/b" = "k2" }
  }

  assert {
    condition     = module.client_delivery["client-c"].maximum_concurrency == 16
    error_message = "151 requests/s summed must give 16 environments (rounded up)."
  }
}

run "api_destination_rate_above_the_quota_is_refused" {
  command = plan

  variables {
    clients = {
      "client-r" = {
        clientId      = "client-r"
        applicationId = "app-r"
        subscriptions = [{ subscriptionId = "s", subscriptionType = "MessageStatus", messageStatuses = ["DELIVERED"], targetIds = ["a"] }]
        targets = [{
          targetId            = "a"
          type                = "API"
          invocationEndpoint  = "https://r.example/a"
          invocationMethod    = "POST"
          invocationRateLimit = 301
          apiKey              = { headerName = "x-api-key" }
          delivery            = { mode = "api-destination" }
        }]
      }
    }
    client_api_keys = { "client-r/a" = "k" }
  }

  expect_failures = [var.clients]
}

run "rates_within_each_bound_are_planned" {
  command = plan

  variables {
    clients = {
      "client-r" = {
        clientId      = "client-r"
        applicationId = "app-r"
        subscriptions = [{ subscriptionId = "s", subscriptionType = "MessageStatus", messageStatuses = ["DELIVERED"], targetIds = ["a", "b"] }]
        targets = [
          {
            targetId            = "a"
            type                = "API"
            invocationEndpoint  = "https://r.example/a"
            invocationMethod    = "POST"
            invocationRateLimit = 1000
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "api-destination" }
          },
          {
            targetId            = "b"
            type                = "API"
            invocationEndpoint  = "https://r.example/b"
            invocationMethod    = "POST"
            invocationRateLimit = 10000
            apiKey              = { headerName = "x-api-key" }
            delivery            = { mode = "https" }
          },
        ]
      }
    }
    client_api_keys          = { "client-r/a" = "k1", "client-r/b" = "k2" }
    api_destination_max_rate = 1000
  }

  assert {
    condition     = module.client_delivery["client-r"].maximum_concurrency == 1000
    error_message = "10000 requests/s on an https target must give 1000 environments."
  }
}

run "https_rate_above_10000_is_refused" {
  command = plan

  variables {
    clients = {
      "client-r" = {
        clientId      = "client-r"
        applicationId = "app-r"
        subscriptions = [{ subscriptionId = "s", subscriptionType = "MessageStatus", messageStatuses = ["DELIVERED"], targetIds = ["a"] }]
        targets = [{
          targetId            = "a"
          type                = "API"
          invocationEndpoint  = "https://r.example/a"
          invocationMethod    = "POST"
          invocationRateLimit = 10001
          apiKey              = { headerName = "x-api-key" }
          delivery            = { mode = "https" }
        }]
      }
    }
    client_api_keys = { "client-r/a" = "k" }
  }

  expect_failures = [var.clients]
}
