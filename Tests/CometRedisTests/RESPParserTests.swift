import CometRedis
import NIOCore
import Testing

@Suite("RESP: encoding and the bounded incremental parser")
struct RESPParserTests {
    private func parseAll(_ text: String, limits: RESPParser.Limits = .init()) throws -> [RESPValue] {
        var buffer = ByteBuffer(string: text)
        var values: [RESPValue] = []
        let parser = RESPParser(limits: limits)
        while let value = try parser.next(&buffer) { values.append(value) }
        #expect(buffer.readableBytes == 0, "everything consumed")
        return values
    }

    @Test("Every RESP2 type, nil bulk and nil array, nesting")
    func types() throws {
        let values = try self.parseAll("+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n")
        #expect(values == [
            .simpleString("OK"), .error("ERR bad"), .integer(-42), .bulkString(ByteBuffer(string: "he\r\no")),
            .bulkString(nil), .array(nil), .array([.array([.integer(1)]), .bulkString(ByteBuffer())]),
        ])
    }

    @Test("A value split anywhere is read once all of it is there, and not before")
    func incremental() throws {
        let text = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$11\r\nhello world\r\n"
        let parser = RESPParser()
        for split in 0...text.utf8.count {
            var buffer = ByteBuffer(bytes: Array(text.utf8.prefix(split)))
            let early = try parser.next(&buffer)
            if split < text.utf8.count {
                #expect(early == nil, "at \(split)")
                #expect(buffer.readerIndex == 0)
                buffer.writeBytes(Array(text.utf8.dropFirst(split)))
                let value = try parser.next(&buffer)
                #expect(value?.elements?.count == 3)
            } else {
                #expect(early?.elements?[2].string == "hello world")
            }
        }
    }

    @Test("Hostile input is an error, never an allocation of what it claims: huge lengths, deep nesting, garbage")
    func hostile() {
        let limits = RESPParser.Limits(maxBulkBytes: 1024, maxArrayCount: 100, maxDepth: 3, maxLineBytes: 64)
        for text in ["$99999999999\r\n", "*1000000000\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "?what\r\n",
                     ":12x\r\n", "$3\r\nabcd\r\n", "+OK\rX", "+" + String(repeating: "a", count: 100), "$-2\r\n", "+a\nb\r\n"] {
            #expect(throws: RESPProtocolError.self, "\(text.prefix(20))") { _ = try self.parseAll(text, limits: limits) }
        }
    }

    @Test("Commands are arrays of bulk strings; a value round-trips through the encoder and the parser")
    func encoding() throws {
        var buffer = ByteBuffer()
        RESPEncoder.write(["SET", "k", .bytes(ByteBuffer(string: "v\r\n"))], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n")
        let value = RESPValue.array([.bulkString(ByteBuffer(string: "m")), .integer(7), .bulkString(nil), .array([])])
        var encoded = ByteBuffer()
        RESPEncoder.write(value, into: &encoded)
        #expect(try RESPParser().next(&encoded) == value)
    }

    @Test("redis:// URLs: host, port, password, user, database; anything else refused")
    func addresses() {
        #expect(RedisAddress(url: "redis://127.0.0.1") == RedisAddress(host: "127.0.0.1"))
        #expect(RedisAddress(url: "redis://:s%40cret@h:6380/2") == RedisAddress(host: "h", port: 6380, password: "s@cret", database: 2))
        #expect(RedisAddress(url: "redis://me:pw@[::1]:7000") == RedisAddress(host: "::1", port: 7000, user: "me", password: "pw"))
        for bad in ["rediss://h", "http://h", "redis://", "redis://h:0", "redis://h:x", "redis://h/-1", "redis://[::1"] {
            #expect(RedisAddress(url: bad) == nil, "\(bad)")
        }
    }
}
