"""Local stack of Mon soutien psy: DynamoDB Local, the S3 server and an API Gateway emulator."""
