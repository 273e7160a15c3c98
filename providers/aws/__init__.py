"""AWS adapters: Secrets Manager store, IAM access key and API Gateway key issuers."""
