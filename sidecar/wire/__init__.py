"""What the app and the sidecar share on the wire: the HTTP/1.1 client of both channels and daprd's JSON
log line. Leaf modules (standard library and httptools only): the app beside real daprd loads no engine."""
