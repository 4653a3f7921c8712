import CometCore
import CometTestSupport
import Foundation
import Testing

/// Graceful drain: held polls are answered with their cursor, streams are told to reconnect, run() returns.
@Suite("Lifecycle", .serialized)
struct LifecycleTests {
    @Test("A graceful shutdown answers polls, tells streams to reconnect, and stops")
    func drain() async throws {
        try await LiveGateway.withGateway(configure: { $0.server.drainRetry = 1234 }) { live in
            let cursor = try publish(live, "dr", "before the drain")
            let held = try await RawHTTPClient.get(port: live.publicPort, "/sub/dr?last_event_id=\(cursor)")
            let sse = try await RawHTTPClient.get(port: live.publicPort, "/sub/dr", headers: ["Accept: text/event-stream"])
            let stream = try await RawHTTPClient.get(port: live.publicPort, "/sub/dr?transport=stream")
            #expect(await sse.wait { $0.contains("\n\n") })
            #expect(await stream.wait { $0.contains("last_event_id") })
            #expect(try await waitForSubscribers(live, "dr", 3))
            let health = Curl.request("GET", "\(live.publicURL)/healthz")
            #expect(health.status == 200)
            #expect(try jsonObject(health.body)["subscribers"] as? Int == 3)

            await live.triggerShutdown()

            #expect(await held.waitForClose())
            #expect(httpStatus(held.text) == 200)
            let body = try jsonObject(httpBody(held.text))
            #expect((body["messages"] as? [Any])?.isEmpty == true)
            #expect(body["last_event_id"] as? String == cursor)
            #expect(held.text.contains("Connection: close"))

            #expect(await sse.waitForClose())
            let parsed = parseSSE(httpBody(sse.text))
            #expect(parsed.retry == 1234)
            #expect(parsed.events.last?.event == "reconnect")

            #expect(await stream.waitForClose())
            #expect(httpBody(stream.text).contains("\"reconnect\":true"))

            // No new connections are accepted.
            await #expect(throws: (any Error).self) {
                let late = try await RawHTTPClient.connect(port: live.publicPort)
                try await late.send("GET /healthz HTTP/1.1\r\n\r\n")
                if await late.waitForClose(), late.text.isEmpty { throw CancellationError() }
            }
        }
    }

    @Test("The drain deadline closes a connection whatever it is doing: here, a publish whose body stops arriving")
    func drainDeadlineBoundsPartialRequests() async throws {
        // request_timeout is far away: only the drain deadline can end this connection within the client's bounded wait.
        try await LiveGateway.withGateway(configure: {
            $0.server.drainTimeout = 0.5
            $0.limits.requestTimeout = 3600
        }) { live in
            let publisher = try await RawHTTPClient.connect(port: live.publishPort)
            try await publisher.send("POST /pub/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            let stream = try await RawHTTPClient.get(port: live.publicPort, "/sub/partial?transport=stream")
            #expect(await stream.wait { $0.contains("last_event_id") })
            await live.triggerShutdown()
            #expect(await stream.waitForClose())
            #expect(await publisher.waitForClose())
            #expect(!publisher.text.contains("HTTP/1.1 2"), "the half-sent publish was not accepted")
        }
    }

    @Test("Idle keep-alive connections are closed after idle_timeout")
    func idleTimeout() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.idleTimeout = 0.3 }) { live in
            let client = try await RawHTTPClient.connect(port: live.publicPort)
            try await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await client.wait { $0.hasSuffix("}") })
            #expect(client.text.contains("Connection: keep-alive"))
            #expect(await client.waitForClose())
        }
    }

    @Test("Keep-alive connections serve pipelined requests in order")
    func pipelining() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.connect(port: live.publishPort)
            let request = { (body: String) in
                "POST /pub/pipe HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            try await client.send(request("one") + request("two") + "GET /pub/pipe HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await client.wait { $0.components(separatedBy: "HTTP/1.1 ").count == 4 && $0.hasSuffix("}") })
            let statuses = client.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["202", "202", "200"])
            #expect(client.text.contains("\"messages\":2"))
            await client.close()
        }
    }
}
