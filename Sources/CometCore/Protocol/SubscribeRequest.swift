/// Limits that apply to parsing a subscribe request.
public struct SubscribeLimits: Sendable, Hashable {
    /// The most channels one subscription may name.
    public var maxChannels: Int
    /// The longest channel name.
    public var maxChannelNameLength: Int
    /// The longest (and default) long-poll hold, in seconds.
    public var pollTimeout: Double

    /// Creates limits; defaults: 16 channels, 128-character names, 30 s polls.
    public init(maxChannels: Int = 16, maxChannelNameLength: Int = ChannelName.defaultMaxLength, pollTimeout: Double = 30) {
        self.maxChannels = maxChannels
        self.maxChannelNameLength = maxChannelNameLength
        self.pollTimeout = pollTimeout
    }
}

/// A validated `GET /sub/{channel}[,{channel}…]` request.
public struct SubscribeRequest: Sendable, Equatable {
    /// The channels, sorted and without duplicates (the order a ``Cursor`` uses).
    public var channels: [ChannelName]
    /// The transport.
    public var transport: TransportKind
    /// The resume cursor, if the client sent one.
    public var cursor: Cursor?
    /// How long a long poll is held, in seconds.
    public var pollTimeout: Double
    /// `?callback=`: the function a JSONP response or a same-origin forever iframe calls (validated).
    public var callback: JavaScriptCallback?
    /// `?origin=`: the page origin a cross-origin forever iframe posts its messages to (the caller checks it against
    /// the allowlist).
    public var origin: String?

    /// The path prefix of subscribe requests.
    public static let pathPrefix = "/sub/"

    /// Parses a subscribe request.
    /// - Parameters:
    ///   - target: The request target; its path must start with ``pathPrefix``.
    ///   - accept: The `Accept` header, if any.
    ///   - lastEventID: The `Last-Event-ID` header, if any (it wins over `?last_event_id=`).
    ///   - limits: Limits to enforce.
    /// - Throws: ``GatewayError`` (400) with a short reason for every invalid part.
    ///   - webSocket: The request opens a WebSocket: `transport`, `callback` and `origin` are ignored (the transport is
    ///     the socket; ``transport`` is left at `.sse` and means nothing then).
    public init(target: RequestTarget, accept: String?, lastEventID: String?, limits: SubscribeLimits,
                webSocket: Bool = false) throws {
        guard target.path.hasPrefix(SubscribeRequest.pathPrefix) else {
            throw GatewayError(.notFound, "not found")
        }
        let utf8 = target.path.utf8
        let list = utf8[utf8.index(utf8.startIndex, offsetBy: SubscribeRequest.pathPrefix.utf8.count)...]
        guard !list.isEmpty else { throw GatewayError.badRequest("no channel given") }
        var channels: [ChannelName] = []
        var start = list.startIndex
        while true {
            let end = list[start...].firstIndex(of: UInt8(ascii: ",")) ?? list.endIndex
            guard channels.count < limits.maxChannels else {
                throw GatewayError.badRequest("too many channels (at most \(limits.maxChannels))")
            }
            channels.append(try ChannelName(validating: Substring(list[start..<end]), maxLength: limits.maxChannelNameLength))
            guard end < list.endIndex else { break }
            start = list.index(after: end)
        }
        self.channels = channels.count == 1 ? channels : Array(Set(channels)).sorted()

        var (transportName, lastEventIDParameter, timeoutText) = target.queryValues("transport", "last_event_id", "timeout")
        if webSocket {
            transportName = "sse"
            timeoutText = nil
        }
        var explicit: TransportKind?
        if let name = transportName {
            guard let transport = TransportKind(rawValue: String(name)) else {
                throw GatewayError.badRequest("unknown transport (use sse, stream, poll, iframe or jsonp)")
            }
            explicit = transport
        }
        // Only the script transports read `callback` and `origin`: the other transports' requests skip that scan.
        switch explicit {
        case .sse, .stream, .poll:
            self.callback = nil
            self.origin = nil
        case .iframe, .jsonp, .none:
            let (callbackText, originText, _) = target.queryValues("callback", "origin")
            self.callback = try callbackText.map { try JavaScriptCallback(validating: $0) }
            self.origin = originText.map(String.init)
        }
        if let explicit {
            self.transport = explicit
        } else if self.callback != nil {
            self.transport = .jsonp
        } else {
            let wantsSSE = accept.map { $0.lowercased().contains("text/event-stream") } ?? false
            self.transport = wantsSSE ? .sse : .poll
        }
        switch self.transport {
        case .jsonp:
            guard self.callback != nil else { throw GatewayError.badRequest("jsonp needs ?callback=NAME") }
            guard self.origin == nil else { throw GatewayError.badRequest("origin is for the iframe transport") }
        case .iframe:
            if let origin = self.origin {
                guard self.callback == nil else { throw GatewayError.badRequest("give callback or origin, not both") }
                guard !origin.isEmpty, origin.utf8.count <= 256 else { throw GatewayError.badRequest("invalid origin") }
            }
        case .sse, .stream, .poll:
            break
        }

        if let text = lastEventID.flatMap({ $0.isEmpty ? nil : Substring($0) }) ?? lastEventIDParameter {
            self.cursor = text.isEmpty ? nil : try Cursor(parsing: text)
        } else {
            self.cursor = nil
        }

        self.pollTimeout = limits.pollTimeout
        if let text = timeoutText {
            guard let seconds = Double(text), seconds.isFinite, seconds >= 1, seconds <= limits.pollTimeout else {
                let most = limits.pollTimeout.isFinite && limits.pollTimeout < 1e9 ? "\(Int(limits.pollTimeout))" : "\(limits.pollTimeout)"
                throw GatewayError.badRequest("timeout must be a number of seconds from 1 to \(most)")
            }
            self.pollTimeout = seconds
        }
    }
}
