"""Local stand-ins for production infrastructure: a real Kafka broker and a CPU model server."""
