import NIOCore
import Testing

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
}
