using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace WebSocketFrontend.Protocol;

/// <summary>Reading request parameters: names match case-insensitively, types are checked strictly.</summary>
public static class Json
{
    /// <summary>
    /// Finds a property whatever its case (the specification writes both <c>Token</c> and <c>token</c>).
    /// Two spellings of one name in the same object are ambiguous and refused.
    /// </summary>
    public static bool TryGetProperty(JsonElement obj, string name, out JsonElement value)
    {
        value = default;
        var found = false;
        foreach (var property in obj.EnumerateObject())
        {
            if (!property.NameEquals(name) && !NameEqualsIgnoreCase(property, name))
            {
                continue;
            }

            if (found)
            {
                throw ProtocolException.BadRequest($"'{name}' is given more than once.");
            }

            value = property.Value;
            found = true;
        }

        return found;
    }

    /// <summary>
    /// <see cref="StringComparison.OrdinalIgnoreCase"/> on the property's name. A name written as plain ASCII (every
    /// name a client means) is compared as its raw bytes, without making a string of it for each property read.
    /// </summary>
    private static bool NameEqualsIgnoreCase(JsonProperty property, string name)
    {
        var raw = JsonMarshal.GetRawUtf8PropertyName(property);
        if (Ascii.IsValid(raw) && raw.IndexOf((byte)'\\') < 0 && Ascii.IsValid(name))
        {
            return Ascii.EqualsIgnoreCase(raw, name);
        }

        return string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A parameter that must be a non-empty string.</summary>
    public static string RequireString(JsonElement parameters, string name)
    {
        if (!TryGetProperty(parameters, name, out var value))
        {
            throw ProtocolException.BadRequest($"Missing parameter '{name}'.");
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw ProtocolException.BadRequest($"'{name}' must be a string.");
        }

        return GetString(value, name) is { Length: > 0 } text
            ? text
            : throw ProtocolException.BadRequest($"'{name}' must not be empty.");
    }

    /// <summary>
    /// The text of a string value. JSON may escape a lone UTF-16 surrogate (<c>"\uD800"</c>), which no
    /// string can hold: that is the client's mistake, so it is a bad request, not an 'unavailable' or a dropped socket.
    /// </summary>
    public static string GetString(JsonElement value, string name)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException) when (value.ValueKind == JsonValueKind.String)
        {
            throw ProtocolException.BadRequest($"'{name}' is not valid Unicode text.");
        }
    }

    /// <summary>A parameter that must be a JSON object.</summary>
    public static JsonElement RequireObject(JsonElement parameters, string name)
    {
        if (!TryGetProperty(parameters, name, out var value))
        {
            throw ProtocolException.BadRequest($"Missing parameter '{name}'.");
        }

        return value.ValueKind == JsonValueKind.Object
            ? value
            : throw ProtocolException.BadRequest($"'{name}' must be a JSON object.");
    }
}
