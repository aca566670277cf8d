"""Service roles trust one principal, and only this account's requests when the service says whose."""

from __future__ import annotations

from components.roles import service_trust_policy


def test_a_service_that_sends_no_source_account_is_trusted_without_a_condition() -> None:
    assert service_trust_policy("ec2.amazonaws.com") == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def test_a_source_account_pins_the_trust_to_that_account() -> None:
    (statement,) = service_trust_policy("vpc-flow-logs.amazonaws.com", "123456789012")["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
