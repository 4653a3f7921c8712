import CometCore
import CometTestSupport
import Foundation
import Testing

/// The head of the response to `GET path` (or another method) with `Origin: origin`, once it arrived.
private func responseHead(_ live: LiveGateway, _ path: String, method: String = "GET", origin: String?,
                          extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
    let client = try await LiveByteClient.connect(port: live.publicPort)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(live.publicPort)\r\n"
    if let origin { request += "Origin: \(origin)\r\n" }
    for line in extra { request += line + "\r\n" }
    try await client.send(request + "\r\n")
    let arrived = await client.wait { bytes, _ in splitHTTPHead(bytes) != nil }
    #expect(arrived, "no response to \(path): \(client.text)", sourceLocation: sourceLocation)
    await client.close()
    return splitHTTPHead(client.bytes)?.head ?? ""
}

/// The subscribe requests of the CORS transports (a poll is answered at once: it names a cursor far behind, so the
/// answer is a gap), and an error of each.
private let corsRequests: [(path: String, headers: [String])] = [
    ("/sub/co", ["Accept: text/event-stream"]),
    ("/sub/co?transport=sse", []),
    ("/sub/co?transport=stream", []),
    ("/sub/co?last_event_id=1", []),
    ("/sub/co?transport=poll&last_event_id=1", []),
    ("/sub/bad%20channel?transport=stream", []),
    ("/sub/co?transport=carrier-pigeon", []),
    ("/sub/co?last_event_id=x", []),
]

/// CORS on the HTTP transports: one allowlist (`transports.allowed_origins`), empty by default.
@Suite("Live origins (CORS)", .serialized)
struct LiveOriginsTests {
    @Test("By default (empty allowlist) a cross-origin request gets no CORS header at all")
    func defaultIsSameOrigin() async throws {
        try await LiveGateway.withGateway { live in
            try publish(live, "co", "retained")
            for (path, headers) in corsRequests {
                for origin in ["http://other.example", "http://127.0.0.1:\(live.publicPort)", "null"] {
                    let head = try await responseHead(live, path, origin: origin, extra: headers)
                    #expect(httpStatus(head) != nil, "\(path)")
                    #expect(headerValue(head, "Access-Control-Allow-Origin") == nil, "\(path) from \(origin)")
                    #expect(headerValue(head, "Access-Control-Allow-Credentials") == nil, "\(path) from \(origin)")
                }
            }
            let preflight = try await responseHead(live, "/sub/co", method: "OPTIONS", origin: "http://other.example",
                                                   extra: ["Access-Control-Request-Method: GET"])
            #expect(httpStatus(preflight) == 204)
            #expect(headerValue(preflight, "Allow") == "GET, OPTIONS")
            #expect(!preflight.contains("Access-Control-"))
        }
    }

    @Test("A listed origin gets itself, credentials and Vary: Origin; an unlisted one nothing")
    func listedOrigin() async throws {
        try await LiveGateway.withGateway(configure: {
            $0.transports.allowedOrigins = ["https://app.example", "http://localhost:3000"]
        }) { live in
            try publish(live, "co", "retained")
            for (path, headers) in corsRequests {
                for origin in ["https://app.example", "http://localhost:3000"] {
                    let head = try await responseHead(live, path, origin: origin, extra: headers)
                    #expect(headerValues(head, "Access-Control-Allow-Origin") == [origin], "\(path) from \(origin)")
                    #expect(headerValue(head, "Access-Control-Allow-Credentials") == "true", "\(path)")
                    #expect(headerValue(head, "Vary") == "Origin", "\(path)")
                }
                for origin in ["https://other.example", "http://app.example", "https://app.example:443", "https://APP.example",
                               "https://app.example.evil.example", "http://localhost:3001"] {
                    let head = try await responseHead(live, path, origin: origin, extra: headers)
                    #expect(!head.contains("Access-Control-"), "\(path) from \(origin)")
                }
                let none = try await responseHead(live, path, origin: nil, extra: headers)
                #expect(!none.contains("Access-Control-"), "\(path) without Origin")
            }
        }
    }

    @Test("\"*\" gets Access-Control-Allow-Origin: * and never credentials; a listed origin beside it keeps credentials")
    func wildcard() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["*", "https://app.example"] }) { live in
            try publish(live, "co", "retained")
            for (path, headers) in corsRequests {
                let head = try await responseHead(live, path, origin: "https://any.example", extra: headers)
                #expect(headerValues(head, "Access-Control-Allow-Origin") == ["*"], "\(path)")
                #expect(headerValue(head, "Access-Control-Allow-Credentials") == nil, "\(path)")
                let listed = try await responseHead(live, path, origin: "https://app.example", extra: headers)
                #expect(headerValues(listed, "Access-Control-Allow-Origin") == ["https://app.example"], "\(path)")
                #expect(headerValue(listed, "Access-Control-Allow-Credentials") == "true", "\(path)")
            }
        }
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["*"] }) { live in
            let head = try await responseHead(live, "/sub/co?transport=stream", origin: "https://any.example")
            #expect(headerValue(head, "Access-Control-Allow-Origin") == "*")
            #expect(headerValue(head, "Access-Control-Allow-Credentials") == nil)
            #expect(headerValue(head, "Vary") == nil)
        }
    }

    @Test("A held poll and a keep-alive poll answered from the parked subscription carry the CORS headers too")
    func heldPolls() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["https://app.example"] }) { live in
            let cursor = try publish(live, "hp", "first")
            let client = try await LiveByteClient.connect(port: live.publicPort)
            let request = { (path: String) in
                "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\n\r\n"
            }
            try await client.send(request("/sub/hp?last_event_id=\(cursor)"))
            #expect(try await waitForSubscribers(live, "hp", 1))
            let second = try publish(live, "hp", "second")
            #expect(await client.wait { bytes, _ in String(decoding: bytes, as: UTF8.self).contains("\"second\"") })
            let first = client.text
            #expect(first.components(separatedBy: "Access-Control-Allow-Origin: https://app.example\r\n").count == 2, "\(first)")
            #expect(first.contains("Access-Control-Allow-Credentials: true\r\n"))

            // The connection stays subscribed; the next poll is answered from what it collected meanwhile.
            try publish(live, "hp", "third")
            try await client.send(request("/sub/hp?last_event_id=\(second)"))
            #expect(await client.wait { bytes, _ in String(decoding: bytes, as: UTF8.self).contains("\"third\"") })
            let both = client.text
            #expect(both.components(separatedBy: "Access-Control-Allow-Origin: https://app.example\r\n").count == 3, "\(both)")
            #expect(both.components(separatedBy: "Vary: Origin\r\n").count == 3)
            await client.close()
        }
    }

    @Test("OPTIONS preflight: 204 with the allowed methods and headers for an allowed origin, only Allow otherwise")
    func preflight() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["https://app.example"] }) { live in
            let extra = ["Access-Control-Request-Method: GET", "Access-Control-Request-Headers: last-event-id"]
            let allowed = try await responseHead(live, "/sub/a,b", method: "OPTIONS", origin: "https://app.example", extra: extra)
            #expect(httpStatus(allowed) == 204)
            #expect(headerValue(allowed, "Allow") == "GET, OPTIONS")
            #expect(headerValue(allowed, "Access-Control-Allow-Origin") == "https://app.example")
            #expect(headerValue(allowed, "Access-Control-Allow-Credentials") == "true")
            #expect(headerValue(allowed, "Vary") == "Origin")
            #expect(headerValue(allowed, "Access-Control-Allow-Methods") == "GET, OPTIONS")
            #expect(headerValue(allowed, "Access-Control-Allow-Headers") == "Last-Event-ID, Accept, Cache-Control, X-Requested-With")
            #expect(headerValue(allowed, "Access-Control-Max-Age") == "86400")

            let refused = try await responseHead(live, "/sub/a", method: "OPTIONS", origin: "https://evil.example", extra: extra)
            #expect(httpStatus(refused) == 204)
            #expect(headerValue(refused, "Allow") == "GET, OPTIONS")
            #expect(!refused.contains("Access-Control-"))
        }
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["*"] }) { live in
            let any = try await responseHead(live, "/sub/a", method: "OPTIONS", origin: "https://any.example",
                                             extra: ["Access-Control-Request-Method: GET"])
            #expect(httpStatus(any) == 204)
            #expect(headerValue(any, "Access-Control-Allow-Origin") == "*")
            #expect(headerValue(any, "Access-Control-Allow-Credentials") == nil)
            #expect(headerValue(any, "Access-Control-Allow-Methods") == "GET, OPTIONS")
        }
    }
}
