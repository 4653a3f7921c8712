import FoundationEssentials
import NIOCore

/// What an application behind the gateway tells it in a GRIP response (the Generic Realtime Intermediary Protocol,
/// as Pushpin implements it): hold the client's request open on channels, and what to send meanwhile.
///
/// Read from a response that carries `Grip-Hold` or is `Content-Type: application/grip-instruct`:
/// - headers: `Grip-Hold: response|stream`, `Grip-Channel: name; prev-id=ID` (several channels as a list or as
///   several headers), `Grip-Timeout: SECONDS`, `Grip-Keep-Alive: DATA; format=raw|cstring|base64; timeout=SECONDS;
///   mode=idle|interval`, `Grip-Status: CODE [REASON]`, `Grip-Link: <URI>; rel=next; timeout=SECONDS`. The response's
///   other headers and its body are what the client receives first (a stream) or on timeout (a response hold).
/// - an instruct body: `{"hold": {"mode", "channels": [{"name", "prev-id"}], "timeout", "keep-alive": {"content" |
///   "content-bin", "timeout"}}, "response": {"code", "reason", "headers": {…} | [[name, value], …], "body" |
///   "body-bin"}}`; the response's status must then be `200`.
///
/// Anything malformed is a ``Refusal`` with a short reason (the gateway answers the client `502`).
public struct GripInstruction: Sendable {
    /// How the client's request is held.
    public enum Mode: Sendable, Equatable {
        /// Until one message completes it (its `http-response`), or the timeout sends ``GripInstruction/response``.
        case response
        /// As a stream: ``GripInstruction/response`` is its start, each message's `http-stream` content is appended.
        case stream
    }

    /// A channel to hold on.
    public struct Channel: Sendable, Equatable {
        /// The channel.
        public var name: ChannelName
        /// The id of the last message the application's response reflects: messages after it still in history are
        /// sent at once.
        public var prevID: String?
    }

    /// What a stream writes when idle (or at every interval).
    public struct KeepAlive: Sendable, Equatable {
        /// The bytes written.
        public var content: [UInt8]
        /// Seconds of idleness (or the interval) before it is written.
        public var timeout: Int
        /// Written every `timeout` seconds whatever else was written (`mode=interval`), not only when idle.
        public var interval: Bool

        public init(content: [UInt8], timeout: Int, interval: Bool) {
            self.content = content
            self.timeout = timeout
            self.interval = interval
        }
    }

    /// A response: the start of a stream, or what a response hold answers when it times out.
    public struct Response: Sendable {
        public var status: Int
        public var reason: String
        /// Headers as the application gave them, without `Grip-*` (hop-by-hop headers are removed when written).
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public init(status: Int, reason: String, headers: [(name: String, value: String)], body: [UInt8]) {
            self.status = status
            self.reason = reason
            self.headers = headers
            self.body = body
        }
    }

    /// Where a stream continues (`Grip-Link: <URI>; rel=next`).
    public struct NextLink: Sendable, Equatable {
        /// The link as given (a path, or an absolute URL).
        public var uri: String
        /// Seconds after which the gateway requests it.
        public var timeout: Int

        public init(uri: String, timeout: Int) {
            self.uri = uri
            self.timeout = timeout
        }

        /// The request target to ask the application for, relative to the request that made the hold (`requestURI`):
        /// an absolute URL's path and query (the request goes to the same upstream), a path as it is, or a relative
        /// reference resolved against the request's path.
        public func target(relativeTo requestURI: String) -> String {
            var link = Substring(self.uri)
            for scheme in ["http://", "https://"] where link.lowercased().hasPrefix(scheme) {
                let rest = link.dropFirst(scheme.count)
                link = rest.firstIndex(where: { $0 == "/" || $0 == "?" }).map { rest[$0...] } ?? "/"
                if link.hasPrefix("?") { link = "/" + link }
                return String(link)
            }
            if link.hasPrefix("/") { return String(link) }
            let path = requestURI.prefix { $0 != "?" }
            let directory = path.lastIndex(of: "/").map { path[...$0] } ?? "/"
            return String(directory) + link
        }
    }

    /// A refusal, with a short reason.
    public struct Refusal: Error, Sendable, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    /// How the request is held; nil: not held (an instruct body without `hold`): the client gets ``response``.
    public var mode: Mode?
    /// The channels, sorted by name without repeats (the order of the subscription's cursor).
    public var channels: [Channel]
    /// Seconds a response hold waits for a message.
    public var timeout: Int
    public var keepAlive: KeepAlive?
    public var response: Response
    public var nextLink: NextLink?

    /// `Grip-Timeout` when absent, as Pushpin.
    public static let defaultTimeout = 55
    /// `Grip-Keep-Alive`'s timeout when absent, as Pushpin.
    public static let defaultKeepAliveTimeout = 55
    /// `Grip-Link`'s timeout when absent, as Pushpin.
    public static let defaultNextLinkTimeout = 120
    /// The largest GRIP response body (instruct document, or the start of a hold) the gateway reads.
    public static let maxBodyBytes = 1 << 20

    /// Whether an application's response is a GRIP instruction (rather than a response to pass through).
    public static func isInstruction(_ headers: [(name: String, value: String)]) -> Bool {
        headers.contains { header in
            let name = header.name.lowercased()
            if name == "grip-hold" { return true }
            return name == "content-type"
                && header.value.split(separator: ";").first.map { $0.trimmingSpaces.lowercased() } == "application/grip-instruct"
        }
    }

    /// Reads an instruction from an application's response.
    /// - Parameters:
    ///   - maxChannels: The most channels a hold may name (`limits.max_channels_per_subscription`).
    ///   - maxChannelNameLength: The longest channel name.
    public static func parse(status: Int, reason: String, headers: [(name: String, value: String)], body: [UInt8],
                             maxChannels: Int, maxChannelNameLength: Int) throws(Refusal) -> GripInstruction {
        func values(_ name: String) -> [String] { headers.filter { $0.name.lowercased() == name }.map(\.value) }

        var instruction = GripInstruction(
            mode: nil, channels: [], timeout: Self.defaultTimeout, keepAlive: nil,
            response: Response(status: status, reason: reason,
                               headers: headers.filter { !$0.name.lowercased().hasPrefix("grip-") }, body: body),
            nextLink: nil)
        if let hold = values("grip-hold").first {
            switch hold.trimmingSpaces {
            case "response": instruction.mode = .response
            case "stream": instruction.mode = .stream
            default: throw Refusal("Grip-Hold must be 'response' or 'stream'")
            }
        }
        var channels: [(name: String, prevID: String?)] = []
        for element in HeaderElement.parseList(values("grip-channel")) {
            channels.append((element.value, element.parameter("prev-id")))
        }
        if let timeout = values("grip-timeout").first {
            instruction.timeout = try Self.seconds(String(timeout.trimmingSpaces), "Grip-Timeout")
        }
        if let line = values("grip-keep-alive").first {
            instruction.keepAlive = try Self.keepAlive(line)
        }
        if let line = values("grip-status").first {
            let text = line.trimmingSpaces
            let code = text.prefix { $0 != " " }
            guard code.count == 3, let value = Int(code), value >= 100 else {
                throw Refusal("Grip-Status has an invalid status code")
            }
            instruction.response.status = value
            let rest = text.dropFirst(code.count).trimmingSpaces
            instruction.response.reason = rest.isEmpty ? HTTPStatusPhrase.phrase(for: value) : String(rest)
        }
        for element in HeaderElement.parseList(values("grip-link")) where element.parameter("rel") == "next" {
            let link = element.value
            guard link.count > 2, link.hasPrefix("<"), link.hasSuffix(">") else {
                throw Refusal("Grip-Link is not <URI>")
            }
            let timeout = try element.parameter("timeout").map { v throws(Refusal) in try Self.seconds(v, "Grip-Link timeout") }
            let uri = String(link.dropFirst().dropLast())
            guard uri.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw Refusal("Grip-Link contains an invalid link") }
            instruction.nextLink = NextLink(uri: uri, timeout: max(1, timeout ?? Self.defaultNextLinkTimeout))
        }
        if Self.isInstruct(headers) {
            guard status == 200 else { throw Refusal("application/grip-instruct needs status 200") }
            try Self.readInstruct(body, into: &instruction, channels: &channels)
        }
        instruction.timeout = max(1, instruction.timeout)
        instruction.channels = try Self.channels(channels, held: instruction.mode != nil, maxChannels: maxChannels,
                                                 maxChannelNameLength: maxChannelNameLength)
        return instruction
    }

    private static func isInstruct(_ headers: [(name: String, value: String)]) -> Bool {
        headers.contains {
            $0.name.lowercased() == "content-type"
                && $0.value.split(separator: ";").first.map { $0.trimmingSpaces.lowercased() } == "application/grip-instruct"
        }
    }

    private static func channels(_ given: [(name: String, prevID: String?)], held: Bool, maxChannels: Int,
                                 maxChannelNameLength: Int) throws(Refusal) -> [Channel] {
        guard held else { return [] }
        guard !given.isEmpty else { throw Refusal("GRIP hold names no channel") }
        var byName: [ChannelName: String] = [:]
        var names: Set<ChannelName> = []
        for (text, prevID) in given {
            let name: ChannelName
            do {
                name = try ChannelName(validating: text, maxLength: maxChannelNameLength)
            } catch {
                throw Refusal("GRIP channel name is not valid for this gateway")
            }
            names.insert(name)
            if let prevID { byName[name] = prevID }
        }
        guard names.count <= maxChannels else { throw Refusal("GRIP hold names more than \(maxChannels) channels") }
        return names.sorted().map { Channel(name: $0, prevID: byName[$0]) }
    }

    private static func seconds(_ text: String, _ what: String) throws(Refusal) -> Int {
        guard let value = Int(text), value >= 0 else { throw Refusal("\(what) is not a number of seconds") }
        return min(value, 86_400 * 365)
    }

    private static func keepAlive(_ line: String) throws(Refusal) -> KeepAlive {
        guard let element = HeaderElement.parseSingle(line), !element.value.isEmpty else {
            throw Refusal("Grip-Keep-Alive cannot be empty")
        }
        let content: [UInt8]
        switch element.parameter("format") ?? "raw" {
        case "raw", "":
            content = Array(element.value.utf8)
        case "cstring":
            guard let unescaped = Self.unescapeCString(element.value) else {
                throw Refusal("Grip-Keep-Alive cstring format is malformed")
            }
            content = unescaped
        case "base64":
            guard let data = Data(base64Encoded: element.value) else {
                throw Refusal("Grip-Keep-Alive base64 format is malformed")
            }
            content = Array(data)
        default:
            throw Refusal("Grip-Keep-Alive has an unknown format")
        }
        let interval: Bool
        switch element.parameter("mode") ?? "idle" {
        case "idle", "": interval = false
        case "interval": interval = true
        default: throw Refusal("Grip-Keep-Alive has an unknown mode")
        }
        let timeout = try element.parameter("timeout").map { v throws(Refusal) in try Self.seconds(v, "Grip-Keep-Alive timeout") }
        return KeepAlive(content: content, timeout: max(1, timeout ?? Self.defaultKeepAliveTimeout), interval: interval)
    }

    /// `\\`, `\r`, `\n` and `\xHH` escapes; nil when malformed.
    static func unescapeCString(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                continue
            }
            switch bytes.popFirst() {
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "x"):
                guard bytes.count >= 2, let high = HTTPRequestParser.hexValue(bytes.popFirst()!), let low = HTTPRequestParser.hexValue(bytes.popFirst()!)
                else { return nil }
                out.append(high << 4 | low)
            default:
                return nil
            }
        }
        return out
    }
}
