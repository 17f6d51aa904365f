using System.Text.Json;

namespace Tests.Abuse;

/// <summary>
/// Reads a server message the way a strict parser does: valid JSON whose every string and property name is
/// valid Unicode text (System.Text.Json's own reader accepts an escaped lone surrogate until the string is read).
/// </summary>
public static class StrictJson
{
    /// <summary>The body of a server envelope, after checking the whole text strictly and the envelope's shape.</summary>
    public static JsonElement Envelope(string text)
    {
        using var document = Parse(text);
        var root = document.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        Assert.Equal("instace.to.client", root.GetProperty("event").GetString());
        var body = root.GetProperty("body");
        Assert.Equal(JsonValueKind.Object, body.ValueKind);
        Assert.False(string.IsNullOrEmpty(body.GetProperty("action").GetString()));
        Assert.Equal(JsonValueKind.Object, body.GetProperty("parameters").ValueKind);
        if (body.TryGetProperty("requestId", out var requestId))
        {
            Assert.True(requestId.ValueKind is JsonValueKind.String or JsonValueKind.Number, $"requestId is {requestId.ValueKind}");
        }

        return body.Clone();
    }

    /// <summary>Parses <paramref name="text"/> and reads every string in it; throws when a strict parser would.</summary>
    public static JsonDocument Parse(string text)
    {
        var document = JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 256 });
        ReadAll(document.RootElement);
        return document;
    }

    private static void ReadAll(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                _ = element.GetString();
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    _ = property.Name;
                    ReadAll(property.Value);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    ReadAll(item);
                }

                break;
        }
    }
}
