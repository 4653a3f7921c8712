import CometCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A complete (non-streamed) HTTP response.
struct HTTPResponse {
    var status: Int
    var phrase: String
    var headers: [(String, String)] = []
    var contentType: String? = nil
    var body: ByteBuffer? = nil
    /// Close the connection after this response.
    var close = false

    init(status: Int, phrase: String, headers: [(String, String)] = [], contentType: String? = nil,
         body: ByteBuffer? = nil, close: Bool = false) {
        self.status = status
        self.phrase = phrase
        self.headers = headers
        self.contentType = contentType
        self.body = body
        self.close = close
    }

    /// A short plain-text error response for a ``GatewayError``.
    init(error: GatewayError, close: Bool = false) {
        self.init(
            status: error.code.status,
            phrase: error.code.phrase,
            contentType: "text/plain; charset=utf-8",
            body: ByteBuffer(string: error.reason + "\n"),
            close: close
        )
    }

    /// A JSON response.
    static func json(_ status: Int, _ phrase: String, _ body: ByteBuffer, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, phrase: phrase, headers: headers, contentType: "application/json; charset=utf-8",
                     body: body)
    }

    /// Serializes the head and body into one buffer.
    func serialize(keepAlive: Bool, date: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256 + (self.body?.readableBytes ?? 0))
        HTTPResponse.writeHead(
            status: self.status,
            phrase: self.phrase,
            headers: self.headers,
            contentType: self.contentType,
            contentLength: self.body?.readableBytes ?? 0,
            keepAlive: keepAlive && !self.close,
            date: date,
            into: &buffer
        )
        if let body = self.body {
            buffer.writeImmutableBuffer(body)
        }
        return buffer
    }

    /// Writes a response head. `contentLength` nil means the body is delimited by closing the connection.
    ///
    /// The head is assembled in the buffer's memory in one write (each `ByteBuffer` write call has a fixed cost
    /// that a dozen small pieces would pay a dozen times).
    static func writeHead(
        status: Int,
        phrase: String,
        headers: [(String, String)],
        contentType: String?,
        contentLength: Int?,
        keepAlive: Bool,
        date: String,
        into buffer: inout ByteBuffer
    ) {
        var capacity = 128 + 20 + phrase.utf8.count + date.utf8.count + (contentType?.utf8.count ?? 0)
        for (name, value) in headers {
            capacity += name.utf8.count + value.utf8.count + 4
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
            var out = RawWriter(memory)
            out.append("HTTP/1.1 ")
            out.appendDecimal(UInt64(status))
            out.append(" ")
            out.append(phrase)
            out.append("\r\nServer: comet-gateway\r\nDate: ")
            out.append(date)
            out.append("\r\n")
            if let contentType {
                out.append("Content-Type: ")
                out.append(contentType)
                out.append("\r\n")
            }
            if let contentLength {
                out.append("Content-Length: ")
                out.appendDecimal(UInt64(contentLength))
                out.append("\r\n")
            }
            for (name, value) in headers {
                out.append(name)
                out.append(": ")
                out.append(value)
                out.append("\r\n")
            }
            out.append(keepAlive && contentLength != nil ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n")
            return out.count
        }
    }
}

/// The `Date` header value, formatted at most once a second per event loop.
final class HTTPDateCache {
    private var second: time_t = 0
    private var text = ""

    var current: String {
        var now = time(nil)
        if now != self.second {
            self.second = now
            var parts = tm()
            gmtime_r(&now, &parts)
            var output = [CChar](repeating: 0, count: 64)
            let length = strftime(&output, output.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            self.text = String(decoding: output[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return self.text
    }
}

@available(*, unavailable)
extension HTTPDateCache: Sendable {}
