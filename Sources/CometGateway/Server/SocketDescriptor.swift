@_spi(Reflection) import Swift
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the file descriptor under a NIO TCP socket channel, for ``ConnectionWriter``'s direct writes.
///
/// NIO does not expose a channel's descriptor. Its socket channels hold it in stored properties: the channel's
/// `socket` (a `BaseSocket`) and that object's `descriptor`. ``of(_:)`` reads those two fields at the offsets that the
/// Swift runtime's own type metadata gives for them (``FieldLayout``, looked up once per channel class) and then
/// proves the number: the descriptor's own local and peer addresses (`getsockname`, `getpeername`) must equal the
/// channel's, and a TCP connection's pair of addresses is unique in the process. Anything else (another kind of
/// channel, a layout NIO changed, a Unix socket, a mismatch) gives nil, and the connection writes through NIO only.
///
/// Cost per connection: two loads and the two system calls of the proof. Parsing the channel's `description`
/// (which names the descriptor too, but formats both addresses) cost about 7 µs, `Mirror` about 25 µs: a tenth and
/// a quarter of the gateway's CPU per connection in a connect storm.
enum SocketDescriptor {
    /// The descriptor of `channel`'s connected TCP socket, or nil. Call on the channel's event loop, once it is active.
    static func of(_ channel: any Channel) -> CInt? {
        guard let local = channel.localAddress, let remote = channel.remoteAddress else { return nil }
        guard let descriptor = Self.stored(in: channel) else { return nil }
        guard Self.address(of: descriptor, peer: false, equals: local),
              Self.address(of: descriptor, peer: true, equals: remote)
        else { return nil }
        return descriptor
    }

    /// Channel classes already looked up: their layout, or nil for a class without the two fields.
    private static let layouts = NIOLockedValueBox<[ObjectIdentifier: FieldLayout?]>([:])

    /// The value of `channel.socket.descriptor`, read at the runtime's field offsets, or nil when `channel`'s class has
    /// no such fields. Unproven: ``of(_:)`` checks it.
    static func stored(in channel: any Channel) -> CInt? {
        let object = channel as AnyObject
        let key = ObjectIdentifier(type(of: object))
        let layout = Self.layouts.withLockedValue { layouts in
            if let known = layouts[key] { return known }
            let found = FieldLayout(channelClass: type(of: object))
            layouts[key] = found
            return found
        }
        guard let layout else { return nil }
        return layout.descriptor(of: object)
    }
}

/// Where a NIO socket channel keeps its socket object and that object its descriptor, as byte offsets from the start
/// of each object, found by name and type in the Swift runtime's field metadata (`_forEachField`).
struct FieldLayout: Sendable {
    let socketOffset: Int
    let socketClass: ObjectIdentifier
    let descriptorOffset: Int

    /// The layout for channels of class `channelClass`, or nil: it needs a stored property `socket` of a class type
    /// whose class (or a superclass) stores `descriptor: CInt`.
    init?(channelClass: AnyClass) {
        guard let socket = Self.field("socket", in: channelClass),
              let socketClass = socket.type as? AnyClass,
              let descriptor = Self.field("descriptor", in: socketClass),
              descriptor.type == CInt.self
        else { return nil }
        self.socketOffset = socket.offset
        self.socketClass = ObjectIdentifier(socketClass)
        self.descriptorOffset = descriptor.offset
    }

    /// The descriptor stored in `channel` (an instance of the class this layout was made for), or nil when its socket
    /// object is not of the class the layout expects (a subclass would have been looked up on its own).
    func descriptor(of channel: AnyObject) -> CInt? {
        withExtendedLifetime(channel) {
            let base = UnsafeRawPointer(Unmanaged.passUnretained(channel).toOpaque())
            let socketPointer = base.load(fromByteOffset: self.socketOffset, as: UnsafeRawPointer.self)
            let socket = Unmanaged<AnyObject>.fromOpaque(socketPointer).takeUnretainedValue()
            guard ObjectIdentifier(type(of: socket)) == self.socketClass else { return nil }
            let descriptor = socketPointer.load(fromByteOffset: self.descriptorOffset, as: CInt.self)
            return descriptor >= 0 ? descriptor : nil
        }
    }

    /// `_EachFieldOptions.classType` (the standard library declares it as a `static var`, which strict concurrency
    /// refuses to read): walk a class's stored properties.
    private static let classType = _EachFieldOptions(rawValue: 1 << 0)

    /// The offset and declared type of the stored property `label` of `type` or of its nearest superclass that has one.
    private static func field(_ label: String, in type: AnyClass) -> (offset: Int, type: Any.Type)? {
        var current: AnyClass? = type
        while let candidate = current {
            var found: (offset: Int, type: Any.Type)?
            _forEachField(of: candidate, options: Self.classType) { name, offset, fieldType, _ in
                guard String(cString: name) == label else { return true }
                found = (offset, fieldType)
                return false
            }
            if let found { return found }
            current = _getSuperclass(candidate)
        }
        return nil
    }
}

extension SocketDescriptor {
    /// Whether the socket `descriptor`'s local (or peer) address is `address` (IPv4 or IPv6 only).
    private static func address(of descriptor: CInt, peer: Bool, equals address: SocketAddress) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(descriptor, $0, &length) : getsockname(descriptor, $0, &length)
            }
        }
        guard status == 0 else { return false }
        // NIO's equality compares family, port and address bytes (not the host name).
        switch (Int32(storage.ss_family), address) {
        case (AF_INET, .v4):
            let actual = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in.self) }
            return SocketAddress(actual, host: "") == address
        case (AF_INET6, .v6):
            let actual = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
            return SocketAddress(actual, host: "") == address
        default:
            return false
        }
    }
}
