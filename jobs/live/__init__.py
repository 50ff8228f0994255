"""Live progress over websockets (Channels): the consumer and its routes."""
