"""The service edge shared by the host and the backend.

Conversion between library types and protobuf messages (one place per direction), the one
mapping from library errors to gRPC status codes, the progress fan-out used by streaming RPCs,
and the server bootstrap (health, reflection, message-size limits).
"""
