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

    /// The `Content-Type` of JSON responses.
    static let jsonContentType = "application/json; charset=utf-8"

    /// A JSON response.
    static func json(_ status: Int, _ phrase: String, _ body: ByteBuffer, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, phrase: phrase, headers: headers, contentType: Self.jsonContentType, body: body)
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

    /// Serializes a response whose body `writeBody` writes straight into the buffer that carries the head: one
    /// allocation and no copy of the body. The body is written first, after room reserved for the head; the head is
    /// then written into that room, ending where the body starts.
    static func serialize(
        status: Int,
        phrase: String,
        headers: [(String, String)],
        contentType: String,
        keepAlive: Bool,
        date: String,
        bodyCapacity: Int,
        writeBody: (inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        let room = Self.headBound(phrase: phrase, headers: headers, contentType: contentType, date: date)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(room + bodyCapacity)
        buffer.moveWriterIndex(forwardBy: room)
        writeBody(&buffer)
        let bodyLength = buffer.writerIndex - room
        let headLength = buffer.withUnsafeMutableReadableBytes { memory -> Int in
            var out = RawWriter(UnsafeMutableRawBufferPointer(rebasing: memory[0..<room]))
            Self.writeHead(status: status, phrase: phrase, headers: headers, contentType: contentType,
                           contentLength: bodyLength, keepAlive: keepAlive, date: date, to: &out)
            let start = memory.baseAddress! + (room - out.count)
            start.copyMemory(from: memory.baseAddress!, byteCount: out.count)  // memmove: the ranges may overlap
            return out.count
        }
        buffer.moveReaderIndex(forwardBy: room - headLength)
        return buffer
    }

    /// The most bytes ``writeHead(status:phrase:headers:contentType:contentLength:keepAlive:date:into:)`` writes.
    static func headBound(phrase: String, headers: [(String, String)], contentType: String?, date: String) -> Int {
        var capacity = 128 + 20 + phrase.utf8.count + date.utf8.count + (contentType?.utf8.count ?? 0)
        for (name, value) in headers {
            capacity += name.utf8.count + value.utf8.count + 4
        }
        return capacity
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
        let capacity = Self.headBound(phrase: phrase, headers: headers, contentType: contentType, date: date)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
            var out = RawWriter(memory)
            Self.writeHead(status: status, phrase: phrase, headers: headers, contentType: contentType,
                           contentLength: contentLength, keepAlive: keepAlive, date: date, to: &out)
            return out.count
        }
    }

    /// Writes a response head to raw memory with room for ``headBound(phrase:headers:contentType:date:)`` bytes.
    static func writeHead(
        status: Int,
        phrase: String,
        headers: [(String, String)],
        contentType: String?,
        contentLength: Int?,
        keepAlive: Bool,
        date: String,
        to out: inout RawWriter
    ) {
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
        out.append(Self.connectionLine(keepAlive: keepAlive && contentLength != nil))
    }

    /// The last line of a head, with the blank line that ends it.
    static func connectionLine(keepAlive: Bool) -> StaticString {
        keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
    }
}

/// The `Date` header value, formatted at most once a second per event loop.
final class HTTPDateCache {
    /// The second (since the epoch) that ``current`` last formatted.
    private(set) var second = 0
    private var text = ""

    var current: String {
        var now = time(nil)
        if Int(now) != self.second {
            self.second = Int(now)
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
