using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace WebSocketFrontend.Protocol;

/// <summary>
/// JSON can escape a lone UTF-16 surrogate (<c>"\uD800"</c>), which no Unicode text can hold: System.Text.Json
/// refuses to read such a string, and strict parsers refuse a document that carries one. Requests with one are
/// refused; JSON stored before that rule is written out with U+FFFD in its place.
/// </summary>
public static class UnicodeText
{
    private const string Replacement = "\\ufffd";

    /// <summary>
    /// True when every string and property name of <paramref name="json"/> (a document already parsed, so its
    /// escapes are well formed) decodes to valid Unicode. Only escaped strings can fail: the bytes are valid UTF-8.
    /// </summary>
    public static bool AllStringsValid(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = RequestParser.MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped && !EscapesValid(reader.ValueSpan))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when the raw JSON text of one string (as <see cref="JsonElement.GetRawText"/> gives it) decodes to valid Unicode.</summary>
    public static bool RawStringValid(string raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        return !raw.Contains('\\', StringComparison.Ordinal) || EscapesValid(Encoding.UTF8.GetBytes(raw));
    }

    /// <summary>
    /// <paramref name="json"/> (stored JSON text) with every lone surrogate, escaped or not, replaced by U+FFFD;
    /// the same instance when it has none, which is the usual case and costs one scan.
    /// </summary>
    public static string SanitizeJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (json.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0 && !json.Contains("\\u", StringComparison.Ordinal))
        {
            return json;
        }

        StringBuilder? fixedText = null;
        var copied = 0;
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            if (c == '\\' && i + 1 < json.Length)
            {
                if (json[i + 1] != 'u' || !TryUnit(json.AsSpan(i), out var unit))
                {
                    // Any other escape is two characters; the second may be a quote or a backslash.
                    i++;
                    continue;
                }

                if (char.IsHighSurrogate(unit) && TryUnit(json.AsSpan(i + 6), out var low) && char.IsLowSurrogate(low))
                {
                    i += 11;
                    continue;
                }

                if (char.IsSurrogate(unit))
                {
                    Replace(ref fixedText, json, ref copied, i, 6, Replacement);
                }

                i += 5;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < json.Length && char.IsLowSurrogate(json[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                Replace(ref fixedText, json, ref copied, i, 1, "\uFFFD");
            }
        }

        return fixedText is null ? json : fixedText.Append(json, copied, json.Length - copied).ToString();
    }

    /// <summary><paramref name="text"/> with every lone surrogate replaced by U+FFFD; the same instance when it has none.</summary>
    public static string? SanitizeText(string? text)
    {
        if (text is null || text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            return text;
        }

        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]))
            {
                chars[i] = '\uFFFD';
            }
        }

        return new string(chars);
    }

    /// <summary>Checks the <c>\uXXXX</c> escapes of an escaped string's content: every surrogate must be half of a pair.</summary>
    private static bool EscapesValid(ReadOnlySpan<byte> escaped)
    {
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] != '\\')
            {
                continue;
            }

            if (i + 1 >= escaped.Length || escaped[i + 1] != 'u')
            {
                i++;
                continue;
            }

            if (!TryUnit(escaped[i..], out var unit))
            {
                return false;
            }

            if (char.IsHighSurrogate(unit) && TryUnit(escaped[(i + 6)..], out var low) && char.IsLowSurrogate(low))
            {
                i += 11;
            }
            else if (char.IsSurrogate(unit))
            {
                return false;
            }
            else
            {
                i += 5;
            }
        }

        return true;
    }

    /// <summary>Reads <c>\uXXXX</c> at the start of <paramref name="text"/>.</summary>
    private static bool TryUnit(ReadOnlySpan<byte> text, out char unit)
    {
        unit = default;
        if (text.Length < 6 || text[0] != '\\' || text[1] != 'u'
            || !Utf8Parser.TryParse(text.Slice(2, 4), out ushort value, out var consumed, 'X') || consumed != 4)
        {
            return false;
        }

        unit = (char)value;
        return true;
    }

    private static bool TryUnit(ReadOnlySpan<char> text, out char unit)
    {
        unit = default;
        if (text.Length < 6 || text[0] != '\\' || text[1] != 'u'
            || !ushort.TryParse(text.Slice(2, 4), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            return false;
        }

        unit = (char)value;
        return true;
    }

    private static void Replace(ref StringBuilder? fixedText, string json, ref int copied, int at, int length, string replacement)
    {
        fixedText ??= new StringBuilder(json.Length);
        fixedText.Append(json, copied, at - copied).Append(replacement);
        copied = at + length;
    }
}
