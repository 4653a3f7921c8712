import CometCore
import NIOCore

/// Renders what GRIP holds write: responses and stream heads, with the application's headers (hop-by-hop, `Grip-*`
/// and `Content-Length` removed; the gateway frames the body itself).
enum GripResponses {
    /// A complete response with `Content-Length` (only its head for a `HEAD` request).
    static func render(_ response: GripInstruction.Response, keepAlive: Bool, date: String, headOnly: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256 + response.body.count)
        Self.writeHead(response, date: date, into: &buffer)
        buffer.writeString("Content-Length: \(response.body.count)\r\n")
        if !keepAlive { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        if !headOnly { buffer.writeBytes(response.body) }
        return buffer
    }

    /// The head of a held stream: chunked, or (an HTTP/1.0 client) ended by closing the connection.
    static func streamHead(_ response: GripInstruction.Response, chunked: Bool, date: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        Self.writeHead(response, date: date, into: &buffer)
        buffer.writeStaticString(chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Connection: close\r\n\r\n")
        return buffer
    }

    /// The status line and the application's headers (with a `Date` when it gave none).
    private static func writeHead(_ response: GripInstruction.Response, date: String, into buffer: inout ByteBuffer) {
        buffer.writeString("HTTP/1.1 \(response.status) \(response.reason)\r\n")
        var hasDate = false
        for (name, value) in ProxyHeaders.response(response.headers) {
            if !hasDate && name.lowercased() == "date" { hasDate = true }
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if !hasDate {
            buffer.writeStaticString("Date: ")
            buffer.writeString(date)
            buffer.writeStaticString("\r\n")
        }
    }

    /// What a message answers a response hold with: its `http-response`, or, for a message published without GRIP
    /// formats, `200` with the payload, the held response's headers and the message's `Content-Type` (if it has
    /// one). nil: the message has GRIP formats but no `http-response`.
    static func response(for message: Message, held: GripInstruction.Response) -> GripInstruction.Response? {
        if let grip = message.grip { return grip.response }
        var headers = held.headers
        if let contentType = message.contentType {
            headers.removeAll { $0.name.lowercased() == "content-type" }
            headers.append(("Content-Type", contentType))
        }
        return GripInstruction.Response(status: 200, reason: "OK", headers: headers,
                                        body: Array(message.data.readableBytesView))
    }
}
