import CometCore
import CometTestSupport
import Foundation
import Testing

/// Resume is exact: every retained message after the cursor, in order, exactly once, before live ones; a cursor
/// the history cannot serve is reported as a gap.
@Suite("Live resume", .serialized)
struct LiveResumeTests {
    @Test("SSE resumes with Last-Event-ID: the missed messages, then live ones, each once")
    func sseResume() async throws {
        try await LiveGateway.withGateway { live in
            let first = try await RawHTTPClient.get(port: live.publicPort, "/sub/r", headers: ["Accept: text/event-stream"])
            #expect(await first.wait { $0.contains("\n\n") })
            try publish(live, "r", "m1")
            try publish(live, "r", "m2")
            #expect(await first.wait { parseSSE(httpBody($0)).events.count == 2 })
            let cursor = parseSSE(httpBody(first.text)).lastEventID
            await first.close()
            for index in 3...5 { try publish(live, "r", "m\(index)") }
            let second = try await RawHTTPClient.get(port: live.publicPort, "/sub/r",
                                                     headers: ["Accept: text/event-stream", "Last-Event-ID: \(cursor)"])
            #expect(await second.wait { parseSSE(httpBody($0)).events.count == 3 })
            try publish(live, "r", "m6")
            #expect(await second.wait { parseSSE(httpBody($0)).events.count == 4 })
            let events = parseSSE(httpBody(second.text)).events
            #expect(events.map(\.data) == ["m3", "m4", "m5", "m6"])
            #expect(!second.text.contains("event: gap"))
            await second.close()
        }
    }

    @Test("An SSE stream without messages still hands the client a cursor (id-only block)")
    func sseInitialCursor() async throws {
        try await LiveGateway.withGateway { live in
            let first = try await RawHTTPClient.get(port: live.publicPort, "/sub/idle", headers: ["Accept: text/event-stream"])
            #expect(await first.wait { !parseSSE(httpBody($0)).lastEventID.isEmpty })
            let cursor = parseSSE(httpBody(first.text)).lastEventID
            #expect(parseSSE(httpBody(first.text)).events.isEmpty)
            await first.close()
            try publish(live, "idle", "while away")
            let second = try await RawHTTPClient.get(port: live.publicPort, "/sub/idle?transport=stream&last_event_id=\(cursor)")
            #expect(await second.wait { (try? streamMessages($0).count) == 1 })
            #expect(try streamMessages(second.text).first?["data"] as? String == "while away")
            await second.close()
        }
    }

    @Test("Long polls passing each cursor on never miss a message published between polls")
    func pollLoopLosesNothing() async throws {
        // History holds every message, so however far the poller falls behind the publisher it never gets a gap.
        try await LiveGateway.withGateway(configure: { $0.history.maxMessages = 1000 }) { live in
            let total = 200
            var cursor = try #require(try await poll(live, "/sub/loop?timeout=1").body["last_event_id"] as? String)
            let publisher = Task {
                await onOwnThread {
                    for index in 0..<total {
                        _ = Curl.post("\(live.publishURL)/pub/loop", "n\(index)")
                    }
                }
            }
            var received: [String] = []
            // Bounded: at most one poll per message plus timeouts.
            for _ in 0..<(total + 5) where received.count < total {
                let response = try await poll(live, "/sub/loop?last_event_id=\(cursor)&timeout=2")
                #expect(response.status == 200)
                #expect(response.body["gap"] == nil)
                let messages = try #require(response.body["messages"] as? [[String: Any]])
                received += messages.compactMap { $0["data"] as? String }
                cursor = try #require(response.body["last_event_id"] as? String)
            }
            await publisher.value
            #expect(received == (0..<total).map { "n\($0)" })
        }
    }

    @Test("A cursor older than the history is a gap: reported, and the retained messages delivered")
    func gap() async throws {
        try await LiveGateway.withGateway(configure: { $0.history.maxMessages = 2 }) { live in
            let firstID = try publish(live, "g", "g1")
            for index in 2...5 { try publish(live, "g", "g\(index)") }
            let response = try await poll(live, "/sub/g?last_event_id=\(firstID)")
            #expect(response.body["gap"] as? Bool == true)
            #expect(response.body["gap_channels"] as? [String] == ["g"])
            let messages = try #require(response.body["messages"] as? [[String: Any]])
            #expect(messages.map { $0["data"] as? String } == ["g4", "g5"])
            // SSE says it with an event named gap, before the retained messages.
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/g",
                                                     headers: ["Accept: text/event-stream", "Last-Event-ID: \(firstID)"])
            #expect(await client.wait { parseSSE(httpBody($0)).events.count == 3 })
            let events = parseSSE(httpBody(client.text)).events
            #expect(events.map(\.event) == ["gap", "message", "message"])
            #expect(try jsonObject(events[0].data)["channels"] as? [String] == ["g"])
            #expect(events.dropFirst().map(\.data) == ["g4", "g5"])
            await client.close()
        }
    }

    @Test("A cursor from before a restart is reported as a gap (history is not persisted)")
    func restartIsAGap() async throws {
        let cursor = try await LiveGateway.withGateway { live in
            try publish(live, "persist", "before restart")
        }
        try await LiveGateway.withGateway { live in
            try publish(live, "persist", "after restart")
            let response = try await poll(live, "/sub/persist?last_event_id=\(cursor)")
            #expect(response.body["gap"] as? Bool == true)
            let messages = try #require(response.body["messages"] as? [[String: Any]])
            #expect(messages.map { $0["data"] as? String } == ["after restart"])
            // The new ids are still greater than the old ones.
            #expect(UInt64(try #require(messages.first?["id"] as? String))! > UInt64(cursor)!)
        }
    }

    @Test("A cursor for other channels, or from the future, is a gap; a malformed one is a 400")
    func unknownCursors() async throws {
        try await LiveGateway.withGateway { live in
            let id = try publish(live, "u", "one")
            let wrongCount = try await poll(live, "/sub/u?last_event_id=\(id).\(id)")
            #expect(wrongCount.body["gap"] as? Bool == true)
            #expect((wrongCount.body["messages"] as? [Any])?.count == 1)
            let future = try await poll(live, "/sub/u?last_event_id=\(UInt64(id)! + 1_000_000_000)")
            #expect(future.body["gap"] as? Bool == true)
            #expect((future.body["messages"] as? [Any])?.count == 1)
            let malformed = try await RawHTTPClient.get(port: live.publicPort, "/sub/u?last_event_id=12abc")
            #expect(await malformed.wait { $0.contains("\r\n\r\n") && $0.hasSuffix("\n") })
            #expect(httpStatus(malformed.text) == 400)
            #expect(httpBody(malformed.text) == "malformed last_event_id\n")
            await malformed.close()
        }
    }

    @Test("DELETE /pub/{channel} closes its subscribers cleanly and drops its history")
    func delete() async throws {
        try await LiveGateway.withGateway { live in
            let id = try publish(live, "d", "kept until deleted")
            let sse = try await RawHTTPClient.get(port: live.publicPort, "/sub/d", headers: ["Accept: text/event-stream"])
            let held = try await RawHTTPClient.get(port: live.publicPort, "/sub/d?last_event_id=\(id)")
            #expect(await sse.wait { $0.contains("\n\n") })
            #expect(try await waitForSubscribers(live, "d", 2))
            let deleted = Curl.request("DELETE", "\(live.publishURL)/pub/d")
            #expect(deleted.status == 200)
            #expect(await sse.waitForClose())
            #expect(parseSSE(httpBody(sse.text)).events.last?.event == "close")
            #expect(await held.wait { $0.hasSuffix("}") })
            #expect(httpStatus(held.text) == 410 || httpStatus(held.text) == 200)
            #expect(Curl.request("GET", "\(live.publishURL)/pub/d").status == 404)
            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/d").status == 404)
            let after = try await poll(live, "/sub/d?last_event_id=\(id)&timeout=1")
            #expect((after.body["messages"] as? [Any])?.isEmpty == true)
            await sse.close()
            await held.close()
        }
    }
}
