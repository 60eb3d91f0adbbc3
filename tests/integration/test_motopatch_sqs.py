"""The embedded runtime's SQS patch (local/motopatch/sqs.py, patch 10): queue attributes are built once per call
and without the message counts while sending; the answers stay exactly moto's."""

from __future__ import annotations


def test_given_visible_in_flight_and_delayed_messages_when_attributes_read_then_each_count_is_exact(rt, uid):
    sqs = rt.client("sqs")
    url = sqs.create_queue(QueueName=f"test-attrs-{uid}", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(7)])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed", "VisibilityTimeout"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": str(7 - len(taken)),
                     "ApproximateNumberOfMessagesNotVisible": str(len(taken)),
                     "ApproximateNumberOfMessagesDelayed": "1", "VisibilityTimeout": "60"}
    every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert {k: every[k] for k in names} == attrs and every["QueueArn"].endswith(f":test-attrs-{uid}")
    sqs.delete_queue(QueueUrl=url)


def test_given_fifo_queue_with_content_dedup_when_same_body_sent_twice_then_kept_once(rt, uid):
    sqs = rt.client("sqs")
    url = sqs.create_queue(QueueName=f"test-fifo-{uid}.fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "same", "MessageGroupId": "g"},
                                                  {"Id": "b", "MessageBody": "other", "MessageGroupId": "g"}])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ContentBasedDeduplication"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "2", "ContentBasedDeduplication": "true"}
    sqs.delete_queue(QueueUrl=url)
