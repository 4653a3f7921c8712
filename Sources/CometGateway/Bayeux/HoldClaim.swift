import CometCore
import NIOCore
import Synchronization

/// The answer to one Bayeux request (an HTTP request's batch, or a WebSocket message's): its ``BayeuxSession``
/// hands it the replies (at once, after the application answered, or when a held `/meta/connect` is answered) and it
/// hands them to the connection waiting for them, on that connection's loop, without a future.
///
/// It also knows the connect the request holds, learned when its session holds it: released if the connection
/// closes before the answer comes, so that the events the connect would take stay queued for the client's next
/// connect. A release asked for before the session said which connect it holds is carried out when it says.
final class HoldClaim: HeldAnswer {
    /// Who waits for the answer.
    private struct Receiver: Sendable {
        let loop: any EventLoop
        let receiver: NIOLoopBound<any HeldAnswerReceiver>
    }

    private struct State {
        var receiver: Receiver?
        /// The answer, when it came before anybody waited for it.
        var answer: ByteBuffer?
        /// The held connect: its session and serial.
        var held: (BayeuxSessions.Handle, Int)?
        /// Handed over, or released: nothing more happens.
        var finished = false
    }

    private let state = Mutex(State())
    /// How an HTTP request's answer is made (a WebSocket's has none: its answers are frames).
    private let format: BayeuxRoute.Format?

    init(format: BayeuxRoute.Format? = nil) {
        self.format = format
    }

    func render(_ body: ByteBuffer) -> HTTPResponse {
        (self.format ?? BayeuxRoute.Format(callback: nil, cors: [])).response(body)
    }

    func wait(_ receiver: any HeldAnswerReceiver, on loop: any EventLoop) {
        let waiting = Receiver(loop: loop, receiver: NIOLoopBound(receiver, eventLoop: loop))
        let answer = self.state.withLock { state -> ByteBuffer? in
            guard !state.finished else { return nil }
            guard let answer = state.answer else {
                state.receiver = waiting
                return nil
            }
            state.answer = nil
            state.finished = true
            return answer
        }
        if let answer { receiver.answered(answer, by: self) }
    }

    /// The answer was handed over, or the connection closed: a session must not take events for it.
    var isFinished: Bool {
        self.state.withLock { $0.finished }
    }

    /// The replies (a JSON array), from the request's session on any loop; once per request.
    func deliver(_ answer: ByteBuffer) {
        let receiver = self.state.withLock { state -> Receiver? in
            guard !state.finished else { return nil }
            state.held = nil
            guard let receiver = state.receiver else {
                state.answer = answer
                return nil
            }
            state.receiver = nil
            state.finished = true
            return receiver
        }
        guard let receiver else { return }
        if receiver.loop.inEventLoop {
            receiver.receiver.value.answered(answer, by: self)
        } else {
            receiver.loop.execute { receiver.receiver.value.answered(answer, by: self) }
        }
    }

    func abandon() {
        self.release()
    }

    /// The session holds the request's connect `serial` (on the session's loop).
    func set(_ handle: BayeuxSessions.Handle, _ serial: Int) {
        let releaseNow = self.state.withLock { state -> Bool in
            if state.finished { return true }
            state.held = (handle, serial)
            return false
        }
        if releaseNow { Self.abandon(handle, serial) }
    }

    /// The connection closed: the answer is not handed over, and a held connect gives its events back.
    func release() {
        let held = self.state.withLock { state -> (BayeuxSessions.Handle, Int)? in
            defer {
                state = State(finished: true)
            }
            return state.held
        }
        if let (handle, serial) = held { Self.abandon(handle, serial) }
    }

    private static func abandon(_ handle: BayeuxSessions.Handle, _ serial: Int) {
        if handle.loop.inEventLoop {
            handle.session.value.abandon(serial)
        } else {
            handle.loop.execute { handle.session.value.abandon(serial) }
        }
    }
}
