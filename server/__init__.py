"""ZeroMQ model server and its client.  `server.protocol` is the wire format."""
