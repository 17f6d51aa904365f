using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using CsCheck;

namespace Tests.Abuse;

/// <summary>
/// Generated request frames: envelopes of every action whose fields are right, missing, of the wrong type,
/// spelled in another case, given twice, huge, deeply nested or holding lone surrogates; then, for most of
/// them, a mutation of the bytes (a bit flipped, a cut, a byte inserted or removed, a slice repeated).
/// </summary>
public static class FuzzFrames
{
    /// <summary>Bytes a mutation writes over another: the ones that change a document's structure.</summary>
    private const string Structural = "{}[]\",:\\ 0";

    private static readonly string[] Actions = ["register", "login", "update", "send", "ack", "logout", "delete", "ping", "online", "rotate", "Login", "fly", ""];

    private static readonly Gen<string> Strings = Gen.Frequency(
        (8, Gen.OneOf("\"\"", "\"probe-7\"", "\"Turin\"", "\"Citt\u00e0 \u20ac \U0001D11E\"", "\"\\u00e9\\ud83d\\ude00\"", "\"\\\\ud800\"",
            "\"\\u0000\\n\\t\\\"\"", $"\"{new string('n', 300)}\"", "\"\\uDBFF\\uDFFF\"")),
        (1, Gen.OneOf("\"\\ud800\"", "\"\\udfff\"", "\"x\\ud800\\ud800\"", "\"\\udc00\\ud800\"")));

    private static readonly Gen<string> Numbers = Gen.OneOf(
        "0", "-1", "7", "1.5", "1e999999", "-1e-999", "99999999999999999999999", "2147483648", "-2147483649",
        "9223372036854775807", "9223372036854775808", "1E2", "-0", "0.0000001");

    private static readonly Gen<string> Scalars = Gen.OneOf("true", "false", "null");

    private static readonly Gen<string> Nested = Gen.Frequency((6, Gen.Int[1, 20]), (1, Gen.Int[50, 200])).Select(Gen.Bool, (depth, arrays) => arrays
        ? new string('[', depth) + "0" + new string(']', depth)
        : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "0" + new string('}', depth));

    private static readonly Gen<string> AnyValue = Gen.Frequency(
        (4, Strings), (4, Numbers), (2, Scalars), (1, Nested), (2, Gen.OneOf("{}", "[]", "{\"k\":[1,\"\\ud800\",{}]}", "[\"a\",{\"b\":null}]", "{\"x\":1,\"x\":2}")));

    /// <summary>Frames for a server whose clients hold <paramref name="tokens"/> and <paramref name="ids"/>.</summary>
    public static Gen<byte[]> Frames(IReadOnlyList<string> tokens, IReadOnlyList<int> ids)
    {
        var token = Gen.Frequency(
            (8, Gen.Int[0, tokens.Count - 1].Select(i => $"\"{tokens[i]}\"")),
            (1, Gen.OneOf("\"not a token\"", $"\"{new string('A', 43)}\"", $"\"{new string('!', 43)}\"", "\"\\ud800\"")),
            (1, AnyValue));
        var id = Gen.Frequency(
            (6, Gen.Int[0, ids.Count - 1].Select(i => ids[i].ToString(CultureInfo.InvariantCulture))),
            (2, Numbers),
            (1, AnyValue));
        var information = Gen.Frequency(
            (6, Object(Field("name", Strings), Field("location", Strings), Field("zz", AnyValue), Field("deep", Nested))),
            (1, AnyValue));
        var parameters = Object(
            Field("token", token), Optional(Field("information", information)), Optional(Field("to", id)), Optional(Field("payload", AnyValue)),
            Optional(Field("ack", Gen.Frequency((4, Scalars), (1, AnyValue)))), Optional(Field("upTo", Gen.Frequency((3, Numbers), (1, AnyValue)))),
            Optional(Field("after", Numbers)), Optional(Field("limit", Numbers)));
        var action = Gen.Frequency((10, Gen.OneOf(Actions).Select(a => $"\"{a}\"")), (1, AnyValue));
        var requestId = Gen.Frequency((6, Numbers), (4, Strings), (1, AnyValue));
        var evt = Gen.Frequency((12, Gen.Const("\"client.to.instance\"")), (1, Gen.OneOf("\"instace.to.client\"", "\"Client.To.Instance\"", "\"\\udc00\"")), (1, AnyValue));
        var body = Gen.Frequency(
            (12, Object(Field("action", action), Field("requestId", requestId), Field("parameters", Gen.Frequency((10, parameters), (1, AnyValue))))),
            (1, AnyValue));
        var envelope = Gen.Frequency(
            (20, Object(Field("event", evt), Field("body", body))),
            (1, AnyValue),
            (1, Gen.OneOf("", " ", "not json", "{\"event\":\"client.to.instance\"}{}")));
        return Gen.Select(envelope, Gen.Int[0, 11], Gen.Int[0, int.MaxValue], Gen.Int[0, 255], Mutate);
    }

    /// <summary>Kinds 0-5 leave the frame as generated; the rest change its bytes at <paramref name="at"/>.</summary>
    private static byte[] Mutate(string text, int kind, int at, int value)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var p = bytes.Length == 0 ? 0 : at % bytes.Length;
        switch (kind)
        {
            case 6 when bytes.Length > 0:
                bytes[p] ^= (byte)(1 << (value % 8));
                return bytes;
            case 7:
                return bytes[..p];
            case 8:
                return [.. bytes[..p], (byte)value, .. bytes[p..]];
            case 9:
                return [.. bytes[..p], .. bytes[Math.Min(bytes.Length, p + 1 + (value % 16))..]];
            case 10:
                return [.. bytes[..p], .. bytes[p..Math.Min(bytes.Length, p + (value % 32))], .. bytes[p..]];
            case 11 when bytes.Length > 0:
                bytes[p] = (byte)Structural[value % Structural.Length];
                return bytes;
            default:
                return bytes;
        }
    }

    /// <summary>A property that is left out, present, present in another case, or given twice.</summary>
    private static Gen<string> Field(string name, Gen<string> value)
    {
        var other = char.ToUpperInvariant(name[0]) + name[1..];
        return Gen.Select(Gen.Int[0, 39], value, value, (how, v, w) => how switch
        {
            0 => "",
            1 => $"\"{other}\":{v}",
            2 => $"\"{name}\":{v},\"{name}\":{w}",
            3 => $"\"{name}\":{v},\"{other}\":{w}",
            _ => $"\"{name}\":{v}",
        });
    }

    /// <summary>A property present in about half of the objects.</summary>
    private static Gen<string> Optional(Gen<string> field) => Gen.Frequency((1, Gen.Const("")), (1, field));

    private static Gen<string> Object(params Gen<string>[] fields) =>
        fields.Aggregate(Gen.Const(ImmutableList<string>.Empty), (all, field) => Gen.Select(all, field, (list, f) => list.Add(f)))
            .Select(list => "{" + string.Join(',', list.Where(f => f.Length > 0)) + "}");
}
