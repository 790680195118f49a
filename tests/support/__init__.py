"""What the tests share: local servers that speak AWS's protocols (Converse, a DynamoDB fault
proxy), the original failure logger as a client, event and policy shapes, small helpers."""
