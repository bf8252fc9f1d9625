"""What sends a webhook delivery and records it: the notifier's deliveries and retries, and the
API's test event and redelivery."""
