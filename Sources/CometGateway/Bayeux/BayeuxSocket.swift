import CometCore
import NIOCore

/// Bayeux over a WebSocket (`connectionType: "websocket"`): each text message is a batch of Bayeux messages and is
/// answered with one text message holding the replies (a held `/meta/connect`'s reply, with the events it takes,
/// comes when it is answered). A batch that waits for the application (a relayed publish, an authorized subscribe)
/// may be answered after a later one; replies echo their requests' `id`. Confined to the connection's event loop.
final class BayeuxSocket: WebSocketApplication, HeldAnswerReceiver {
    private unowned let session: WebSocketSession
    /// The answers of batches not answered yet (a held connect among them), released if the socket closes first.
    private var waiting: [HoldClaim] = []
    private var closed = false

    init(session: WebSocketSession) {
        self.session = session
    }

    func received(_ text: String) {
        let gateway = self.session.gateway
        let messages: [BayeuxMessage]
        do {
            messages = try BayeuxMessage.parse(ByteBuffer(string: text),
                                               maxMessages: gateway.bayeux.configuration.maxBatchMessages)
        } catch {
            // Not Bayeux: the socket is closed (there is no request to answer with a 400).
            self.session.close(code: 1007, reason: "not a Bayeux message")
            return
        }
        let claim = HoldClaim()
        self.waiting.append(claim)
        claim.wait(self, on: self.session.eventLoop)
        BayeuxEndpoint(gateway: gateway).answer(
            messages, transport: .webSocket, credentials: self.session.credentials, token: nil,
            on: self.session.eventLoop, reply: claim)
    }

    func answered(_ body: ByteBuffer, by answer: any HeldAnswer) {
        if let index = self.waiting.firstIndex(where: { $0 === answer }) { self.waiting.remove(at: index) }
        guard !self.closed else { return }
        self.session.outbound.sendNow(WebSocketEncoding.frame(.text, payload: body))
    }

    func quiesce() {}  // the sessions' held connects are answered with advice to handshake (BayeuxService.quiesce)

    func ended() {
        self.closed = true
        let waiting = self.waiting
        self.waiting.removeAll()
        for claim in waiting { claim.release() }
    }
}

@available(*, unavailable)
extension BayeuxSocket: Sendable {}
