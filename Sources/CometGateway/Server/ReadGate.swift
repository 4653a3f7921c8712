import NIOCore

/// Pauses socket reads on a publisher connection while its request's response is pending (a publish waiting for the
/// broker), so that a client pipelining publishes cannot make the gateway buffer them without bound.
///
/// Only publisher connections have one, and only with a broker that can make a response wait
/// (``Broker/answersImmediately`` false): subscriber connections never wait on the broker for a response, and with
/// the embedded broker no response waits at all; their reads (one per long-poll cycle or publish) then skip this hop.
final class ReadGate: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    private var context: ChannelHandlerContext?
    private var holding = false
    private var readPending = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil  // break the cycle between the context and this handler
    }

    func read(context: ChannelHandlerContext) {
        if self.holding {
            self.readPending = true
        } else {
            context.read()
        }
    }

    /// Stops passing reads to the socket until ``release()``.
    func hold() {
        self.holding = true
    }

    /// Passes reads again, including one asked for while held.
    func release() {
        self.holding = false
        if self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }
}

@available(*, unavailable)
extension ReadGate: Sendable {}
