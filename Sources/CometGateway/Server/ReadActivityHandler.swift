import NIOCore

/// Notes that bytes arrived from the client, ahead of the HTTP decoder, so the connection handler can tell an idle
/// connection from one that is sending a request slowly (which gets the shorter `request_timeout`).
final class ReadActivityHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Bytes arrived since the connection handler last cleared this.
    var bytesArrived = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.bytesArrived = true
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension ReadActivityHandler: Sendable {}
