/// A minimal Server-Sent Events parser written from the HTML Living Standard ("9.2.6 Interpreting an event
/// stream"), used to check what a browser's `EventSource` would make of the gateway's bytes.
///
/// It implements: UTF-8 decoding with a leading BOM stripped; lines ended by CRLF, LF or CR; comment lines
/// (starting with `:`); `field: value` with one leading space removed from the value; a line without a colon as a
/// field with an empty value; the `event`, `data`, `id` (ignored when it contains NUL) and `retry` (ASCII digits
/// only) fields; dispatch on an empty line (data buffer joined with LF, the trailing LF removed, no event when the
/// data buffer is empty); pending data discarded at the end of the stream.
struct SpecSSEParser {
    struct Event: Equatable, CustomStringConvertible {
        /// The event type (`message` when no `event:` field was given).
        var type: String
        /// The data, lines joined with LF.
        var data: String
        /// The `lastEventId` of the dispatched event.
        var lastEventID: String

        var description: String { "Event(type: \(type.debugDescription), data: \(data.debugDescription), id: \(lastEventID.debugDescription))" }
    }

    /// Dispatched events, in order.
    private(set) var events: [Event] = []
    /// The last event ID buffer (the `lastEventId` the next event would carry).
    private(set) var lastEventID = ""
    /// The reconnection time set by a valid `retry:` field.
    private(set) var retry: Int?

    private var dataBuffer: [Unicode.Scalar] = []
    private var eventType = ""

    /// Parses a complete stream.
    static func parse(_ bytes: [UInt8]) -> SpecSSEParser {
        var parser = SpecSSEParser()
        parser.feed(bytes)
        return parser
    }

    private mutating func feed(_ bytes: [UInt8]) {
        var scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var line: [Unicode.Scalar] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\r" || scalar == "\n" {
                if scalar == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { index += 1 }
                self.process(line: line)
                line.removeAll()
            } else {
                line.append(scalar)
            }
            index += 1
        }
        // A last line without a line ending is incomplete and, with any pending data, discarded.
    }

    private mutating func process(line: [Unicode.Scalar]) {
        if line.isEmpty {
            self.dispatch()
            return
        }
        if line.first == ":" { return }
        let field: String
        var value: ArraySlice<Unicode.Scalar>
        if let colon = line.firstIndex(of: ":") {
            field = Self.string(line[..<colon])
            value = line[(colon + 1)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = Self.string(line[...])
            value = []
        }
        switch field {
        case "event":
            self.eventType = Self.string(value)
        case "data":
            self.dataBuffer.append(contentsOf: value)
            self.dataBuffer.append("\n")
        case "id":
            if !value.contains("\u{0}") { self.lastEventID = Self.string(value) }
        case "retry":
            let digits: ClosedRange<Unicode.Scalar> = "0"..."9"
            if !value.isEmpty, value.allSatisfy({ digits.contains($0) }) {
                self.retry = Int(Self.string(value))
            }
        default:
            break  // ignored, per the spec
        }
    }

    private mutating func dispatch() {
        defer {
            self.dataBuffer.removeAll()
            self.eventType = ""
        }
        guard !self.dataBuffer.isEmpty else { return }
        if self.dataBuffer.last == "\n" { self.dataBuffer.removeLast() }
        self.events.append(
            Event(
                type: self.eventType.isEmpty ? "message" : self.eventType,
                data: Self.string(self.dataBuffer[...]),
                lastEventID: self.lastEventID
            )
        )
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
