import CometCore
import CometTestSupport
import Foundation
import Testing

/// A complete response with a `Content-Length` body.
private struct PageResponse {
    var status: Int
    var head: String
    var body: [UInt8]
    /// The bytes the response took on its connection.
    var length: Int

    var text: String { String(decoding: self.body, as: UTF8.self) }
}

/// The response starting at byte `offset`; nil while incomplete. `bodyless`: the answer to a HEAD request.
private func pageResponse(_ bytes: [UInt8], from offset: Int = 0, bodyless: Bool = false) -> PageResponse? {
    guard offset <= bytes.count, let (head, rest) = splitHTTPHead(Array(bytes[offset...])) else { return nil }
    let length = bodyless ? 0 : (headerValue(head, "Content-Length").flatMap { Int($0) } ?? 0)
    guard rest.count >= length else { return nil }
    return PageResponse(status: httpStatus(head) ?? 0, head: head, body: Array(rest.prefix(length)),
                        length: bytes.count - offset - rest.count + length)
}

/// Sends one request on a new connection and returns its response.
private func fetch(_ live: LiveGateway, _ method: String, _ path: String, headers: [String] = [], body: String? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) async throws -> PageResponse {
    let client = try await LiveByteClient.connect(port: live.publicPort)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(live.publicPort)\r\n"
    for line in headers { request += line + "\r\n" }
    if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
    try await client.send(request + "\r\n" + (body ?? ""))
    let bodyless = method == "HEAD"
    let arrived = await client.wait { bytes, _ in pageResponse(bytes, bodyless: bodyless) != nil }
    #expect(arrived, "no complete response to \(method) \(path): \(client.text)", sourceLocation: sourceLocation)
    await client.close()
    return try #require(pageResponse(client.bytes, bodyless: bodyless), sourceLocation: sourceLocation)
}

/// The pages the public listener serves: the client library, the demo page and its publish form.
@Suite("Client pages", .serialized)
struct ClientPagesTests {
    @Test("GET /comet.js: the library with a strong ETag and an hour of caching")
    func cometJS() async throws {
        try await LiveGateway.withGateway { live in
            let response = try await fetch(live, "GET", "/comet.js")
            #expect(response.status == 200)
            #expect(headerValue(response.head, "Content-Type")?.hasPrefix("application/javascript") == true)
            #expect(headerValue(response.head, "Cache-Control") == "public, max-age=3600")
            #expect(headerValue(response.head, "Content-Length") == "\(response.body.count)")
            let etag = try #require(headerValue(response.head, "ETag"))
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 2, "a strong ETag: \(etag)")
            #expect(!response.body.isEmpty)
            #expect(response.text.contains("Comet"))
            #expect(String(validating: response.body, as: UTF8.self) != nil)

            // The same bytes and validator every time.
            let again = try await fetch(live, "GET", "/comet.js?v=2")
            #expect(again.body == response.body)
            #expect(headerValue(again.head, "ETag") == etag)
        }
    }

    @Test("If-None-Match with the ETag is 304 without a body; another tag gets the file")
    func conditional() async throws {
        try await LiveGateway.withGateway { live in
            let etag = try #require(headerValue(try await fetch(live, "GET", "/comet.js").head, "ETag"))
            for header in ["If-None-Match: \(etag)", "If-None-Match: \"other\", \(etag)", "If-None-Match: *"] {
                let notModified = try await fetch(live, "GET", "/comet.js", headers: [header])
                #expect(notModified.status == 304, "\(header)")
                #expect(notModified.body.isEmpty)
                #expect(headerValue(notModified.head, "ETag") == etag)
                #expect(headerValue(notModified.head, "Cache-Control") == "public, max-age=3600")
            }
            let changed = try await fetch(live, "GET", "/comet.js", headers: ["If-None-Match: \"0123\""])
            #expect(changed.status == 200)
            #expect(!changed.body.isEmpty)
        }
    }

    @Test("HEAD /comet.js: the GET's headers and Content-Length, no body (the next response follows at once)")
    func head() async throws {
        try await LiveGateway.withGateway { live in
            let get = try await fetch(live, "GET", "/comet.js")
            let client = try await LiveByteClient.connect(port: live.publicPort)
            // HEAD, then a GET of /healthz on the same keep-alive connection: any body bytes after the HEAD's head
            // would come before the second response.
            try await client.send("HEAD /comet.js HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let both = await client.wait { bytes, _ in
                guard let first = pageResponse(bytes, bodyless: true) else { return false }
                return pageResponse(bytes, from: first.length) != nil
            }
            #expect(both, "\(client.text)")
            let head = try #require(pageResponse(client.bytes, bodyless: true))
            #expect(head.status == 200)
            #expect(headerValue(head.head, "Content-Length") == "\(get.body.count)")
            for name in ["Content-Type", "ETag", "Cache-Control"] {
                #expect(headerValue(head.head, name) == headerValue(get.head, name), "\(name)")
            }
            let next = try #require(pageResponse(client.bytes, from: head.length))
            #expect(next.status == 200, "bytes after the HEAD response's head: \(client.text.prefix(600))")
            #expect(try jsonObject(next.text)["status"] as? String == "ok")
            await client.close()
        }
    }

    @Test("GET / is the demo page, which loads comet.js; other paths are 404, other methods 405")
    func demoPage() async throws {
        try await LiveGateway.withGateway { live in
            for path in ["/", "/index.html"] {
                let page = try await fetch(live, "GET", path)
                #expect(page.status == 200, "\(path)")
                #expect(headerValue(page.head, "Content-Type")?.hasPrefix("text/html") == true)
                #expect(page.text.contains("comet.js"))
                #expect(headerValue(page.head, "ETag") != nil)
            }
            #expect(try await fetch(live, "GET", "/nothing").status == 404)
            #expect(try await fetch(live, "GET", "/comet.js/x").status == 404)
            #expect(try await fetch(live, "GET", "/demo/publish/demo").status == 404)
            let post = try await fetch(live, "POST", "/comet.js", body: "x")
            #expect(post.status == 405)
            #expect(headerValue(post.head, "Allow")?.contains("GET") == true)
        }
    }

    @Test("POST /demo/publish/{channel} is 404 unless server.demo is on")
    func demoPublishOff() async throws {
        try await LiveGateway.withGateway { live in
            let response = try await fetch(live, "POST", "/demo/publish/demo", body: "hello")
            #expect(response.status == 404)
            #expect(Curl.request("GET", "\(live.publishURL)/pub/demo").status == 404, "nothing was published")
        }
    }

    @Test("With server.demo on, the demo form publishes like /pub (same receipt, same validation)")
    func demoPublishOn() async throws {
        try await LiveGateway.withGateway(configure: { $0.server.demo = true }) { live in
            let subscriber = try await RawHTTPClient.get(port: live.publicPort, "/sub/demo?transport=stream")
            #expect(await subscriber.wait { $0.contains("last_event_id") })
            #expect(try await waitForTotalSubscribers(live, 1))

            let response = try await fetch(live, "POST", "/demo/publish/demo", headers: ["Content-Type: text/plain"],
                                           body: "from the demo page")
            #expect(response.status == 201)
            #expect(headerValue(response.head, "Content-Type")?.hasPrefix("application/json") == true)
            let receipt = try jsonObject(response.text)
            #expect(receipt["channel"] as? String == "demo")
            #expect(receipt["subscribers"] as? Int == 1)
            let id = try #require(receipt["id"] as? String)
            #expect(await subscriber.wait { (try? streamMessages($0).count) == 1 })
            let message = try #require(try streamMessages(subscriber.text).first)
            #expect(message["data"] as? String == "from the demo page")
            #expect(message["id"] as? String == id)
            #expect(message["content_type"] as? String == "text/plain")

            // The same as /pub: a 202 without subscribers, and the same refusals.
            #expect(try await fetch(live, "POST", "/demo/publish/nobody", body: "x").status == 202)
            let badChannel = try await fetch(live, "POST", "/demo/publish/bad%20name", body: "x")
            #expect(badChannel.status == 400)
            #expect(headerValue(badChannel.head, "Content-Type") == "text/plain; charset=utf-8")
            #expect(try await fetch(live, "POST", "/demo/publish/", body: "x").status == 400)
            #expect(try await fetch(live, "POST", "/demo/publish/a,b", body: "x").status == 400)
            #expect(try await fetch(live, "POST", "/demo/publish/demo", headers: ["X-Comet-Event: gap"], body: "x").status == 400)
            let wrongMethod = try await fetch(live, "GET", "/demo/publish/demo")
            #expect(wrongMethod.status == 405)
            #expect(headerValue(wrongMethod.head, "Allow") == "POST")
            // Non-UTF-8 bodies are refused as on /pub.
            let client = try await LiveByteClient.connect(port: live.publicPort)
            try await client.send(bytes: Array("POST /demo/publish/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n".utf8) + [0xC3, 0x28])
            #expect(await client.wait { bytes, _ in pageResponse(bytes) != nil })
            #expect(pageResponse(client.bytes)?.status == 415)
            await client.close()
            await subscriber.close()
        }
    }
}
