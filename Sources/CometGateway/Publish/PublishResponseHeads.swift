import NIOCore

/// The fixed start of a single publish's response head, rendered once a second per event loop: the status line,
/// `Server`, `Date`, `Content-Type` and the name of `Content-Length`, for `201 Created` and `202 Accepted`.
///
/// A publish's response then costs one copy of this prefix, its length, the `Connection` line and the receipt
/// (``PublishEndpoint/writeResponse(for:keepAlive:heads:into:)``); the bytes are the same as
/// ``HTTPResponse/writeHead(status:phrase:headers:contentType:contentLength:keepAlive:date:into:)`` writes, which the
/// tests check byte for byte.
final class PublishResponseHeads {
    private let dateCache: HTTPDateCache
    /// The second the prefixes were rendered for (`-1`: never).
    private var second = -1
    private var created: [UInt8] = []
    private var accepted: [UInt8] = []

    init(dateCache: HTTPDateCache) {
        self.dateCache = dateCache
    }

    /// Calls `body` with the prefix of the current second: for `201 Created` if `delivered`, else `202 Accepted`.
    func withPrefix<Result>(delivered: Bool, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let date = self.dateCache.current
        if self.second != self.dateCache.second {
            self.second = self.dateCache.second
            self.created = Self.render(status: 201, phrase: "Created", date: date)
            self.accepted = Self.render(status: 202, phrase: "Accepted", date: date)
        }
        return delivered ? self.created.withUnsafeBytes(body) : self.accepted.withUnsafeBytes(body)
    }

    /// The head ``HTTPResponse`` writes, cut before the `Content-Length` value.
    private static func render(status: Int, phrase: String, date: String) -> [UInt8] {
        var buffer = ByteBuffer()
        HTTPResponse.writeHead(status: status, phrase: phrase, headers: [], contentType: HTTPResponse.jsonContentType,
                               contentLength: 0, keepAlive: true, date: date, into: &buffer)
        let head = buffer.readBytes(length: buffer.readableBytes)!
        let marker = Array(Self.lengthName.utf8)
        let end = head.firstRange(of: marker)!.upperBound
        return Array(head[..<end])
    }

    /// The header name the prefix ends with.
    private static let lengthName = "\r\nContent-Length: "
}

@available(*, unavailable)
extension PublishResponseHeads: Sendable {}
