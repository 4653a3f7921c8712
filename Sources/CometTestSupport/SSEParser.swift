import Foundation

/// One Server-Sent Event as a browser's `EventSource` would dispatch it.
public struct SSEEvent: Sendable, Equatable {
    /// The event type (`message` when none was given).
    public var event: String
    /// The data, lines joined with LF.
    public var data: String
    /// The last event id in effect when the event was dispatched.
    public var lastEventID: String
}

/// Parses an SSE stream the way the HTML standard's event-stream interpretation does (enough for tests):
/// returns the dispatched events and the last event id seen (also from id-only blocks).
public func parseSSE(_ text: String) -> (events: [SSEEvent], lastEventID: String, retry: Int?) {
    var events: [SSEEvent] = []
    var lastEventID = ""
    var retry: Int?
    var data = ""
    var hasData = false
    var eventType = ""
    let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
    var lines = normalized.split(separator: "\n", omittingEmptySubsequences: false)
    // A trailing partial line is not processed.
    if !normalized.hasSuffix("\n") { lines.removeLast() }
    for line in lines {
        if line.isEmpty {
            if hasData {
                if data.hasSuffix("\n") { data.removeLast() }
                events.append(SSEEvent(event: eventType.isEmpty ? "message" : eventType, data: data, lastEventID: lastEventID))
            }
            data = ""
            hasData = false
            eventType = ""
            continue
        }
        if line.hasPrefix(":") { continue }
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = line
            value = ""
        }
        switch field {
        case "data":
            data += value + "\n"
            hasData = true
        case "event":
            eventType = String(value)
        case "id":
            lastEventID = String(value)
        case "retry":
            retry = Int(value)
        default:
            break
        }
    }
    return (events, lastEventID, retry)
}

/// The body of an HTTP response in `text` (after the blank line ending the head).
public func httpBody(_ text: String) -> String {
    guard let range = text.range(of: "\r\n\r\n") else { return "" }
    return String(text[range.upperBound...])
}

/// The status code of the first HTTP response in `text`.
public func httpStatus(_ text: String) -> Int? {
    guard text.hasPrefix("HTTP/1.1 ") else { return nil }
    return Int(text.dropFirst(9).prefix(3))
}
