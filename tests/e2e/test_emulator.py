"""Tests of the emulator launcher's patches (emulator.py): each shows the behaviour AWS
documents, which unpatched moto 5.2.x does not have.

    python3 -m unittest tests/e2e/test_emulator.py
"""

import io
import json
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions

sys.path.insert(0, str(Path(__file__).parent))
from emulator import Emulator, api_destination_calls  # noqa: E402
from testca import TestCa  # noqa: E402

REGION = "eu-west-2"


def client(service, endpoint, ca):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, verify=str(ca.ca_pem),
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


class EmulatorPatches(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ca = TestCa(Path(cls.tmp.name))
        cls.emu = Emulator(cls.ca, plain_http=True).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.emu.__exit__(None, None, None)
        cls.tmp.cleanup()

    def test_bucket_policy_secure_transport(self):
        s3 = client("s3", self.emu.endpoint, self.ca)
        s3.create_bucket(Bucket="secure-only", CreateBucketConfiguration={"LocationConstraint": REGION})
        # The component's statement (modules/client-config-storage), as AWS's docs write it.
        s3.put_bucket_policy(Bucket="secure-only", Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": ["arn:aws:s3:::secure-only", "arn:aws:s3:::secure-only/*"],
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
        s3.put_object(Bucket="secure-only", Key="k", Body=b"over TLS")
        self.assertEqual(s3.get_object(Bucket="secure-only", Key="k")["Body"].read(), b"over TLS")
        plain = client("s3", self.emu.http_endpoint, self.ca)
        with self.assertRaises(botocore.exceptions.ClientError) as denied:
            plain.put_object(Bucket="secure-only", Key="k2", Body=b"in clear")
        self.assertEqual(denied.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        self.assertNotIn("Contents", {k: v for k, v in s3.list_objects_v2(Bucket="secure-only", Prefix="k2").items()})

    def test_sqs_redrive_allow_policy(self):
        sqs = client("sqs", self.emu.endpoint, self.ca)
        url = sqs.create_queue(QueueName="a-dlq")["QueueUrl"]
        other = sqs.create_queue(QueueName="not-set")["QueueUrl"]
        policy = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sqs:eu-west-2:123456789012:src"]})
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": policy})
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
        self.assertEqual(json.loads(got["RedriveAllowPolicy"]), json.loads(policy))
        every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(json.loads(every["RedriveAllowPolicy"]), json.loads(policy))
        unset = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["All"])["Attributes"]
        self.assertNotIn("RedriveAllowPolicy", unset)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": ""})  # removes it
        removed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertNotIn("RedriveAllowPolicy", removed)

    def test_sqs_event_source_mappings_left_to_driver(self):
        sqs = client("sqs", self.emu.endpoint, self.ca)
        iam = client("iam", self.emu.endpoint, self.ca)
        lam = client("lambda", self.emu.endpoint, self.ca)
        url = sqs.create_queue(QueueName="esm-source")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        role = iam.create_role(RoleName="esm-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        lam.create_function(FunctionName="esm-fn", Runtime="provided.al2023", Role=role, Handler="bootstrap",
                            Code={"ZipFile": code.getvalue()})
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="esm-fn", BatchSize=10,
                                        FunctionResponseTypes=["ReportBatchItemFailures"])
        sqs.send_message(QueueUrl=url, MessageBody="for the driver")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        self.assertEqual([m["Body"] for m in got], ["for the driver"])
        self.assertEqual(got[0]["Attributes"]["ApproximateReceiveCount"], "1")

    def test_events_api_destination_handed_to_driver(self):
        events = client("events", self.emu.endpoint, self.ca)
        events.create_event_bus(Name="calls")
        conn = events.create_connection(Name="c", AuthorizationType="API_KEY", AuthParameters={
            "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "k"}})["ConnectionArn"]
        dest = events.create_api_destination(Name="d", ConnectionArn=conn, InvocationEndpoint="https://127.0.0.1:9/x",
                                             HttpMethod="POST")["ApiDestinationArn"]
        events.put_rule(Name="r", EventBusName="calls", EventPattern=json.dumps({"detail": {"to": ["d"]}}))
        events.put_targets(Rule="r", EventBusName="calls", Targets=[{
            "Id": "api", "Arn": dest, "InputPath": "$.detail.payload",
            "HttpParameters": {"HeaderParameters": {"h": "$.detail.h"}}}])
        api_destination_calls(self.emu.endpoint, str(self.ca.ca_pem))  # drain
        events.put_events(Entries=[
            {"EventBusName": "calls", "Source": "s", "DetailType": "t", "Detail": json.dumps({"to": "d", "payload": {"a": 1}})},
            {"EventBusName": "calls", "Source": "s", "DetailType": "t", "Detail": json.dumps({"to": "elsewhere"})},
        ])
        calls = api_destination_calls(self.emu.endpoint, str(self.ca.ca_pem))
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["event"]["detail"], {"to": "d", "payload": {"a": 1}})
        self.assertEqual(calls[0]["target"]["Arn"], dest)
        self.assertEqual(calls[0]["target"]["InputPath"], "$.detail.payload")
        self.assertTrue(calls[0]["ruleArn"].endswith("rule/calls/r"), calls[0]["ruleArn"])
        self.assertEqual(api_destination_calls(self.emu.endpoint, str(self.ca.ca_pem)), [])


if __name__ == "__main__":
    unittest.main()
