import CometCore

/// A subscription's transport: how its connection is held and what it writes.
enum SubscriberTransport {
    /// One long response, or one channel on a WebSocket.
    case stream(any StreamTransport)
    /// One response per poll.
    case poll(any PollTransport)
    /// A GRIP response hold: one response, from the first message meant for it or on timeout.
    case gripResponse(GripResponseTransport)

    /// The transport of each `?transport=` name: the one registration a transport needs (the compiler checks that
    /// every name has one).
    init(for request: SubscribeRequest, configuration: GatewayConfiguration) {
        let transports = configuration.transports
        switch request.transport {
        case .sse:
            self = .stream(SSETransport(retry: transports.sseRetry))
        case .stream:
            self = .stream(NDJSONTransport())
        case .iframe:
            let delivery: IframeEncoding.Delivery =
                if let origin = request.origin { .postMessage(origin: origin) }
                else { .callback(request.callback ?? IframeEncoding.defaultCallback) }
            self = .stream(IframeTransport(delivery: delivery, padding: transports.iframePadding,
                                           maxBytes: transports.iframeMaxBytes))
        case .poll:
            self = .poll(LongPollTransport())
        case .jsonp:
            guard let callback = request.callback else { preconditionFailure("SubscribeRequest requires jsonp's callback") }
            self = .poll(JSONPTransport(callback: callback))
        }
    }
}
