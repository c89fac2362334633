import Foundation
import Testing

@testable import SwitchyardCore

/// The JSON tree the translations read and write: what it accepts, what it refuses, and that
/// what it writes reads back the same (and as Foundation reads it).
@Suite("ChatTranslation: JSON tree and parser")
struct ChatTranslationJSONTests {
    @Test func escapesAndSurrogatePairsDecodeAndAWrittenValueReadsBackTheSame() throws {
        let value = try JSONValueParser.parse(#"{"a":"q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","b":[true,false,null,-0.5e+3,12345678901234567890]}"#)
        #expect(value.objectValue?["a"] == .string("q\"\\/\u{8}\u{c}\n\r\té😀"))
        #expect(value.objectValue?["b"]?.arrayValue?[4] == .number("12345678901234567890"))
        let written = value.encoded
        #expect(try JSONValueParser.parse(written) == value)
        #expect((try? JSONSerialization.jsonObject(with: Data(written))) != nil)
    }

    @Test func aLoneSurrogateBecomesTheReplacementCharacter() throws {
        #expect(try JSONValueParser.parse(#""\ud800x\udc00""#) == .string("\u{FFFD}x\u{FFFD}"))
    }

    @Test func memberOrderIsKeptAndARepeatedKeyKeepsItsPlaceWithTheLastValue() throws {
        let value = try JSONValueParser.parse(#"{"z":1,"a":2,"z":3}"#)
        #expect(value.objectValue?.keys == ["z", "a"])
        #expect(value.encodedString == #"{"z":3,"a":2}"#)
    }

    @Test func equalityIgnoresMemberOrderAndNumberSpellingButNotKinds() throws {
        #expect(try JSONValueParser.parse(#"{"a":1,"b":[1.0]}"#) == JSONValueParser.parse(#"{"b":[1e0],"a":1.00}"#))
        #expect(try JSONValueParser.parse("true") != JSONValueParser.parse("1"))
        #expect(try JSONValueParser.parse(#"{"a":1}"#) != JSONValueParser.parse(#"{"a":1,"b":2}"#))
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"abc", "\"a\u{1}\"", "\"\\x\"",
        "\"\\u12\"", "{} x", "[1 2]", "{1:2}", "NaN", "'a'",
    ])
    func malformedJSONIsASyntaxErrorWithAnOffset(_ text: String) {
        do {
            _ = try JSONValueParser.parse(text)
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            #expect(error.offset >= 0 && error.offset <= text.utf8.count)
        }
    }

    @Test func invalidUTF8InAStringIsRefused() {
        #expect(throws: JSONValueParser.SyntaxError.self) { try JSONValueParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func nestingIsBoundedSoAHostileBodyCannotExhaustTheStack() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONValueParser.SyntaxError.self) { try JSONValueParser.parse(deep) }
        let allowed = String(repeating: "[", count: JSONValueParser.maxDepth) + String(repeating: "]", count: JSONValueParser.maxDepth)
        #expect(try JSONValueParser.parse(allowed).arrayValue != nil)
    }

    @Test func integersReadFromAnyIntegralSpellingOnly() {
        #expect(JSONValue.number("3").intValue == 3)
        #expect(JSONValue.number("3.0").intValue == 3)
        #expect(JSONValue.number("3e2").intValue == 300)
        #expect(JSONValue.number("3.5").intValue == nil)
        #expect(JSONValue.number("1e999").doubleValue == nil)
        #expect(JSONValue.string("3").intValue == nil)
    }

    @Test(arguments: [
        ("data:image/png;base64,AAAA", "image/png", "AAAA"),
        ("data:IMAGE/JPEG;charset=x;base64,Zm9v", "image/jpeg", "Zm9v"),
    ])
    func dataURLsSplitIntoMediaTypeAndPayload(_ url: String, mediaType: String, payload: String) {
        #expect(DataURL(url) == DataURL(mediaType: mediaType, base64: payload))
    }

    @Test(arguments: ["data:image/png,AAAA", "data:;base64,AAAA", "https://x/a.png", "data:image/png;base64"])
    func aDataURLWithoutMediaTypeOrBase64IsNotOne(_ url: String) {
        #expect(DataURL(url) == nil)
    }
}
