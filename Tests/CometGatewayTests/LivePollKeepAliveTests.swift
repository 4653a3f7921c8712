import CometCore
import CometTestSupport
import Foundation
import Synchronization
import Testing

/// Long polls on one keep-alive connection: between polls the connection stays subscribed, so the next poll that
/// passes the cursor on is answered from what arrived meanwhile, exactly once, without a new registration.
@Suite("Live keep-alive polls", .serialized)
struct LivePollKeepAliveTests {
    @Test("Between keep-alive polls the connection stays subscribed: messages in between are counted and delivered once")
    func subscribedBetweenPolls() async throws {
        try await LiveGateway.withGateway { live in
            let poller = try await KeepAlivePoller(port: live.publicPort)
            try await poller.send("/sub/ka")
            #expect(try await waitForSubscribers(live, "ka", 1))
            try publish(live, "ka", "m0")
            var response = try await poller.next()
            #expect(response.status == 200)
            #expect(response.data == ["m0"])
            #expect(response.keepAlive)

            // Answered, the poll is still a subscriber: publishes count it (201) and it collects what they send.
            let receipt = Curl.post("\(live.publishURL)/pub/ka", "m1")
            #expect(receipt.status == 201)
            #expect(try jsonObject(receipt.body)["subscribers"] as? Int == 1)
            try publish(live, "ka", "m2")

            try await poller.send("/sub/ka?last_event_id=\(response.cursor)")
            response = try await poller.next()
            #expect(response.data == ["m1", "m2"])
            #expect(response.gap == false)

            // Nothing arrived since: the next poll waits for a live message.
            try await poller.send("/sub/ka?last_event_id=\(response.cursor)")
            #expect(try await waitForSubscribers(live, "ka", 1))
            try publish(live, "ka", "m3")
            response = try await poller.next()
            #expect(response.data == ["m3"])

            // Closing the connection unregisters the parked poll.
            await poller.close()
            #expect(try await waitForSubscribers(live, "ka", 0))
        }
    }

    @Test("A keep-alive poll with another cursor, channel set or transport starts afresh from history")
    func otherRequestStartsAfresh() async throws {
        try await LiveGateway.withGateway { live in
            let poller = try await KeepAlivePoller(port: live.publicPort)
            try publish(live, "fa", "a0")
            try await poller.send("/sub/fa?last_event_id=1")
            let first = try await poller.next()
            #expect(first.data == ["a0"])
            #expect(first.gap == true)  // a cursor from before this run
            let second = try publish(live, "fa", "a1")
            try publish(live, "fa", "a2")

            // A cursor other than the one last answered (a1's id): only the retained messages after it.
            try await poller.send("/sub/fa?last_event_id=\(second)")
            var response = try await poller.next()
            #expect(response.data == ["a2"])
            #expect(response.gap == false)

            // Another channel set on the same connection.
            try publish(live, "fb", "b0")
            try await poller.send("/sub/fa,fb?last_event_id=1.1")
            response = try await poller.next()
            #expect(Set(response.data) == ["a0", "a1", "a2", "b0"])
            #expect(try await waitForSubscribers(live, "fb", 1))  // parked on both channels

            // A stream request ends the parked poll; the stream is the only subscriber left.
            try await poller.send("/sub/fa?transport=stream")
            #expect(try await waitForSubscribers(live, "fb", 0))
            #expect(try await waitForSubscribers(live, "fa", 1))
            await poller.close()
            #expect(try await waitForSubscribers(live, "fa", 0))
        }
    }

    @Test("A parked poll that collects more than max_outbound_bytes lets go; the next poll resumes from history")
    func parkedOverflowFallsBackToHistory() async throws {
        try await LiveGateway.withGateway(configure: {
            $0.limits.maxOutboundBytes = 2048
            $0.history.maxMessages = 100
        }) { live in
            let poller = try await KeepAlivePoller(port: live.publicPort)
            try publish(live, "ov", "start")
            try await poller.send("/sub/ov?last_event_id=1")
            let first = try await poller.next()
            #expect(first.data == ["start"])
            #expect(try await waitForSubscribers(live, "ov", 1))
            let payload = String(repeating: "x", count: 200)
            for index in 0..<20 { try publish(live, "ov", "\(index)-\(payload)") }
            // 20 × 200 bytes exceed the 2048-byte bound: the parked poll unregisters.
            #expect(try await waitForSubscribers(live, "ov", 0))
            try await poller.send("/sub/ov?last_event_id=\(first.cursor)")
            let response = try await poller.next()
            #expect(response.data == (0..<20).map { "\($0)-\(payload)" })
            #expect(response.gap == false)
            await poller.close()
        }
    }

    @Test("Deleting the channel of a parked poll unregisters it; the connection's next poll waits afresh")
    func deletedWhileParked() async throws {
        try await LiveGateway.withGateway { live in
            let poller = try await KeepAlivePoller(port: live.publicPort)
            try publish(live, "del", "d0")
            try await poller.send("/sub/del?last_event_id=1")
            let first = try await poller.next()
            #expect(first.data == ["d0"])
            #expect(try await waitForTotalSubscribers(live, 1))  // parked
            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/del").status == 200)
            #expect(try await waitForTotalSubscribers(live, 0))
            try await poller.send("/sub/del?last_event_id=\(first.cursor)&timeout=5")
            #expect(try await waitForTotalSubscribers(live, 1))
            try publish(live, "del", "d1")
            let response = try await poller.next()
            #expect(response.data == ["d1"])
            await poller.close()
        }
    }
}

/// Sends long polls one after another on a single keep-alive connection and reads each response in turn.
final class KeepAlivePoller: Sendable {
    struct Response {
        var status: Int
        var keepAlive: Bool
        var data: [String]
        var cursor: String
        var gap: Bool
    }

    private let client: RawHTTPClient
    private let consumed = Mutex(0)

    init(port: Int) async throws {
        self.client = try await RawHTTPClient.connect(port: port)
    }

    func send(_ path: String) async throws {
        try await self.client.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    }

    /// The next complete response on the connection (bounded wait).
    func next(sourceLocation: SourceLocation = #_sourceLocation) async throws -> Response {
        let offset = self.consumed.withLock { $0 }
        var parsed: (length: Int, head: String, body: String)?
        let complete = await self.client.wait { text in Self.split(text, from: offset) != nil }
        #expect(complete, "no complete response after byte \(offset): \(self.client.text)", sourceLocation: sourceLocation)
        parsed = Self.split(self.client.text, from: offset)
        let (length, head, body) = try #require(parsed, sourceLocation: sourceLocation)
        self.consumed.withLock { $0 += length }
        let object = try jsonObject(body)
        let messages = try #require(object["messages"] as? [[String: Any]], sourceLocation: sourceLocation)
        return Response(
            status: httpStatus(head) ?? 0,
            keepAlive: head.contains("Connection: keep-alive"),
            data: messages.compactMap { $0["data"] as? String },
            cursor: try #require(object["last_event_id"] as? String, sourceLocation: sourceLocation),
            gap: object["gap"] as? Bool ?? false
        )
    }

    func close() async {
        await self.client.close()
    }

    /// The response starting at byte `offset` of `text`: its length in bytes, head and body; nil while incomplete.
    private static func split(_ text: String, from offset: Int) -> (Int, String, String)? {
        let bytes = Array(text.utf8.dropFirst(offset))
        let separator = Array("\r\n\r\n".utf8)
        guard bytes.count >= separator.count,
              let headEnd = (0...(bytes.count - separator.count)).first(where: { Array(bytes[$0..<$0 + 4]) == separator })
        else { return nil }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self)
        guard let lengthLine = head.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
              let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let bodyStart = headEnd + 4
        guard bytes.count >= bodyStart + length else { return nil }
        return (bodyStart + length, head, String(decoding: bytes[bodyStart..<bodyStart + length], as: UTF8.self))
    }
}
