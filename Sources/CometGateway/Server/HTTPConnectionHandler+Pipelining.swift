import CometCore
import NIOCore

/// A publisher connection's pipelined requests while publishes wait for a remote broker (see
/// ``PipelinedResponses``): answers queued and written in request order, and what must wait until they are.
extension HTTPConnectionHandler {
    /// Whether `action` must wait until the pipelined responses before it are written: it writes over time (a
    /// stream, a tunnel) or answers after something else completes. Complete responses queue behind them instead.
    static func waitsForPipelined(_ action: RouteAction) -> Bool {
        switch action {
        case .respond, .published, .respondLater: return false
        case .subscribe, .webSocket, .proxy, .hold, .deferred: return true
        }
    }

    /// Takes the next request while this one's response waits for the broker: the response is written when it and
    /// every response before it are ready (see ``PipelinedResponses``).
    func respondPipelined(_ response: EventLoopFuture<HTTPResponse>, head: RequestHead,
                                  context: ChannelHandlerContext) {
        let ticket = self.pipelined.reserve()
        response.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            guard self.writer != nil else { return }  // the connection is gone
            let response = (try? result.get()) ?? HTTPResponse(error: GatewayError(.serviceUnavailable, "unavailable"))
            // Kept alive (requests after it were taken already) unless it is the last before a close.
            self.pipelined.fill(ticket, with: .response(response, onlyHead: head.method == .head, keepAlive: true))
            self.writePipelined(context: context)
        }
        self.finish(true, context: context)
    }

    /// Writes the pipelined responses that are ready, in order; then closes, or takes requests again.
    func writePipelined(context: ChannelHandlerContext) {
        guard let writer = self.writer else { return }
        var wrote = false
        while let slot = self.pipelined.popReady() {
            switch slot {
            case .waiting:
                break
            case .bytes(let bytes):
                wrote = writer.write(bytes) || wrote
            case .response(let response, let onlyHead, let keepAlive):
                // The last answer before a close says so.
                let last = self.pipelined.isEmpty && self.pipelined.closeWhenWritten
                wrote = writer.write(self.serialize(response, keepAlive: keepAlive && !last, onlyHead: onlyHead)) || wrote
            }
        }
        if wrote { writer.flush() }
        if self.pipelined.isEmpty && self.pipelined.closeWhenWritten {
            self.enterClosed()
            writer.closeWhenWritten()
            return
        }
        guard !self.closed else { return }
        if self.finishWhenRoom && !self.pipelined.isFull {
            self.finishWhenRoom = false
            self.finish(true, context: context)  // takes the requests held meanwhile
        } else if self.pipelined.isEmpty, let (action, head) = self.afterPipelined {
            self.afterPipelined = nil
            self.carryOut(action, head: head, context: context)
        }
    }

    /// Writes a whole response now, or after the pipelined responses still waiting for the broker.
    func write(_ bytes: ByteBuffer) {
        if self.pipelined.isEmpty {
            self.writer!.writeAndFlush(bytes)
        } else {
            self.pipelined.append(.bytes(bytes))
        }
    }
}
