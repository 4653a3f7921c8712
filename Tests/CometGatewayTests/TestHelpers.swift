import CometTestSupport
import Foundation
import Testing

/// Parses a JSON object.
func jsonObject(_ text: String) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try #require(value as? [String: Any], "not a JSON object: \(text)")
}

/// The NDJSON lines of a streamed body that are message objects (have `data`).
func streamMessages(_ text: String) throws -> [[String: Any]] {
    try httpBody(text).split(separator: "\n").map { try jsonObject(String($0)) }.filter { $0["data"] != nil }
}

/// Publishes with libcurl and checks the status is 201 or 202; returns the message id.
@discardableResult
func publish(_ live: LiveGateway, _ channel: String, _ body: String, headers: [String] = [],
             sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let response = Curl.post("\(live.publishURL)/pub/\(channel)", body, headers: headers)
    #expect(response.status == 201 || response.status == 202, "publish answered \(response.status): \(response.body)",
            sourceLocation: sourceLocation)
    return try #require(try jsonObject(response.body)["id"] as? String, sourceLocation: sourceLocation)
}

/// An XHR stream subscriber of `channel` with a 4 KiB receive buffer that has received its start line and then
/// stopped reading: a lagging (or stuck) client.
func nonReadingStream(_ live: LiveGateway, _ channel: String,
                      sourceLocation: SourceLocation = #_sourceLocation) async throws -> RawHTTPClient {
    let client = try await RawHTTPClient.connect(port: live.publicPort, receiveBuffer: 4096)
    try await client.send("GET /sub/\(channel)?transport=stream HTTP/1.1\r\nHost: x\r\n\r\n")
    #expect(await client.wait { $0.contains("last_event_id") }, sourceLocation: sourceLocation)
    try await client.setAutoRead(false)
    return client
}

/// Long-polls once with a raw client and returns the parsed JSON body and the status.
func poll(_ live: LiveGateway, _ path: String, headers: [String] = []) async throws -> (status: Int, body: [String: Any]) {
    let client = try await RawHTTPClient.get(port: live.publicPort, path, headers: headers)
    defer { Task { await client.close() } }
    let complete = await client.wait { text in
        guard let head = text.range(of: "\r\n\r\n"),
              let lengthLine = text[..<head.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
              let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
        else { return false }
        return text.utf8.count - text[..<head.upperBound].utf8.count >= length
    }
    #expect(complete, "poll response incomplete: \(client.text)")
    return (httpStatus(client.text) ?? 0, try jsonObject(httpBody(client.text)))
}

/// Waits until the gateway reports `count` subscribers of `channel` (registration has no event a client can see;
/// bounded: about two seconds).
func waitForSubscribers(_ live: LiveGateway, _ channel: String, _ count: Int) async throws -> Bool {
    for _ in 0..<200 {
        let info = Curl.request("GET", "\(live.publishURL)/pub/\(channel)")
        if info.status == 200, (try jsonObject(info.body)["subscribers"] as? Int) == count { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// Waits until the gateway reports `count` subscriptions in all (`/healthz`; bounded: about two seconds).
func waitForTotalSubscribers(_ live: LiveGateway, _ count: Int) async throws -> Bool {
    for _ in 0..<200 {
        let health = Curl.request("GET", "\(live.publishURL)/healthz")
        if health.status == 200, (try jsonObject(health.body)["subscribers"] as? Int) == count { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}
