import CometCore
import NIOCore
import NIOEmbedded
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import CometGateway

/// Response serialization: the head is exact, and a body written in place sits right after it.
@Suite("HTTP responses")
struct HTTPResponseTests {
    private static let date = "Wed, 25 Nov 2026 08:00:00 GMT"

    @Test("A body written in place follows its head directly, with the right Content-Length, however large it grows",
          arguments: [0, 10, 5000])
    func bodyWrittenInPlace(bodyBytes: Int) {
        let body = String(repeating: "b", count: bodyBytes)
        let bytes = HTTPResponse.serialize(
            status: 200, phrase: "OK", headers: [("Cache-Control", "no-cache, no-store")],
            contentType: HTTPResponse.jsonContentType, keepAlive: true, date: Self.date,
            bodyCapacity: 16  // smaller than the larger bodies: the buffer grows while the body is written
        ) { buffer in
            buffer.writeString(body)
        }
        let expected = "HTTP/1.1 200 OK\r\nServer: comet-gateway\r\nDate: \(Self.date)\r\n"
            + "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(bodyBytes)\r\n"
            + "Cache-Control: no-cache, no-store\r\nConnection: keep-alive\r\n\r\n" + body
        #expect(String(buffer: bytes) == expected)
    }

    @Test("A body written in place matches the same response serialized from a separate body buffer")
    func inPlaceMatchesSeparateBody() {
        var separate = HTTPResponse.json(410, "Gone", ByteBuffer(string: "{\"closed\":true}"))
        separate.close = true
        let inPlace = HTTPResponse.serialize(
            status: 410, phrase: "Gone", headers: [], contentType: HTTPResponse.jsonContentType, keepAlive: false,
            date: Self.date, bodyCapacity: 64
        ) { $0.writeString("{\"closed\":true}") }
        #expect(inPlace == separate.serialize(keepAlive: false, date: Self.date))
        #expect(String(buffer: inPlace).hasSuffix("Connection: close\r\n\r\n{\"closed\":true}"))
    }

    @Test("A single publish's response, rendered in one pass, is byte for byte the generic response to a one-message publish",
          arguments: [
            ("a", UInt64(0), 0), ("bench", 1_764_000_000_123_456, 1), ("news.sport-1", UInt64.max, 19_999),
            (String(repeating: "c", count: 200), 9, 10),
          ])
    func publishResponseMatchesGeneric(channel: String, id: UInt64, subscribers: Int) throws {
        let receipt = PublishReceipt(channel: try ChannelName(validating: channel, maxLength: 256), id: id,
                                     subscribers: subscribers)
        let dateCache = HTTPDateCache()
        let heads = PublishResponseHeads(dateCache: dateCache)
        for keepAlive in [true, false] {
            var rendered = ByteBuffer()
            var date: String
            repeat {  // again if a second boundary fell between rendering and reading the date
                date = dateCache.current
                rendered.clear()
                PublishEndpoint.writeResponse(for: receipt, keepAlive: keepAlive, heads: heads, into: &rendered)
            } while dateCache.current != date
            let generic = PublishEndpoint.response(for: [receipt], batch: false)
                .serialize(keepAlive: keepAlive, date: date)
            #expect(String(buffer: rendered) == String(buffer: generic))
            let text = String(buffer: rendered)
            #expect(text.hasPrefix(subscribers > 0 ? "HTTP/1.1 201 Created\r\n" : "HTTP/1.1 202 Accepted\r\n"))
            let headEnd = try #require(text.firstRange(of: "\r\n\r\n"))
            let body = String(text[headEnd.upperBound...])
            #expect(text.contains("Content-Length: \(body.utf8.count)\r\n"))
            #expect(body == "{\"channel\":\"\(channel)\",\"id\":\"\(id)\",\"subscribers\":\(subscribers)}")
        }
    }

    @Test("A loop's response buffer is reused while no write holds it, and never overwritten while one does")
    func responseBufferReuse() {
        let shard = LoopShard(index: 0, loop: EmbeddedEventLoop(), heartbeatInterval: .seconds(15), stats: GatewayStats())
        var first = shard.renderResponse { $0.writeString("first") }
        let firstStorage = first.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        first = ByteBuffer()  // written and released
        let second = shard.renderResponse { $0.writeString("second") }
        #expect(second.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == firstStorage, "reused")
        // `second` is still held (as NIO holds a write the socket did not take): the next render gets new storage.
        let third = shard.renderResponse { $0.writeString("third") }
        #expect(String(buffer: second) == "second")
        #expect(String(buffer: third) == "third")
        #expect(third.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } != firstStorage)
    }

    @Test("A single publish's response head carries the Date of the second it is written in")
    func publishResponseHeadsFollowTheClock() throws {
        let dateCache = HTTPDateCache()
        let heads = PublishResponseHeads(dateCache: dateCache)
        let receipt = PublishReceipt(channel: try ChannelName(validating: "a"), id: 1, subscribers: 0)
        func render() -> String {
            var buffer = ByteBuffer()
            PublishEndpoint.writeResponse(for: receipt, keepAlive: true, heads: heads, into: &buffer)
            return String(buffer: buffer)
        }
        let first = render()
        let start = dateCache.second
        for _ in 0..<300 where dateCache.second == start {
            usleep(10_000)
            _ = dateCache.current
        }
        #expect(dateCache.second != start)
        let second = render()
        #expect(second != first)
        #expect(second.contains("\r\nDate: \(dateCache.current)\r\n"))
    }
}
