"""Event listeners (webhook, SQS, Azure Service Bus) that hand CloudEvents to Temporal."""
