/// Typed reads of one JSON object's members, each failure a ``TranslationError`` naming the
/// member's full path. An absent member and an explicit `null` both read as nil: the SDKs send
/// `null` for "not set".
struct JSONFieldReader {
    let object: JSONObject
    /// The object's own path (`messages[1]`), empty for the top level.
    let path: String

    init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    /// Reads `value` as an object, or fails naming `path`.
    init(_ value: JSONValue, path: String) throws(TranslationError) {
        guard let object = value.objectValue else { throw .wrongType(path.isEmpty ? "body" : path, expected: "an object", got: value) }
        self.init(object, path: path)
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The member's value unless absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func string(_ key: String) throws(TranslationError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else { throw .wrongType(name(key), expected: "a string", got: value) }
        return string
    }

    func requiredString(_ key: String) throws(TranslationError) -> String {
        guard let string = try string(key) else { throw .missing(name(key)) }
        return string
    }

    func bool(_ key: String) throws(TranslationError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolValue else { throw .wrongType(name(key), expected: "a boolean", got: value) }
        return bool
    }

    func double(_ key: String) throws(TranslationError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value.doubleValue else { throw .wrongType(name(key), expected: "a number", got: value) }
        return number
    }

    func int(_ key: String) throws(TranslationError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let number = value.intValue else { throw .wrongType(name(key), expected: "an integer", got: value) }
        return number
    }

    func array(_ key: String) throws(TranslationError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let array = value.arrayValue else { throw .wrongType(name(key), expected: "an array", got: value) }
        return array
    }

    func object(_ key: String) throws(TranslationError) -> JSONFieldReader? {
        guard let value = value(key) else { return nil }
        return try JSONFieldReader(value, path: name(key))
    }

    /// The elements of an array member as objects, each with its indexed path.
    func objects(_ key: String) throws(TranslationError) -> [JSONFieldReader]? {
        guard let array = try array(key) else { return nil }
        var readers: [JSONFieldReader] = []
        readers.reserveCapacity(array.count)
        for (index, element) in array.enumerated() {
            readers.append(try JSONFieldReader(element, path: "\(name(key))[\(index)]"))
        }
        return readers
    }

    /// Parses a whole body, which must be an object.
    static func body(_ bytes: [UInt8], what: String) throws(TranslationError) -> JSONFieldReader {
        let value: JSONValue
        do {
            value = try JSONValueParser.parse(bytes)
        } catch {
            throw .notJSON(error, what: what)
        }
        guard let object = value.objectValue else {
            throw TranslationError(field: nil, message: "\(what) must be a JSON object, got \(value.kindDescription)")
        }
        return JSONFieldReader(object)
    }
}
