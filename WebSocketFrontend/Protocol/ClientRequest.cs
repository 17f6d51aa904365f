using System.Text.Json;
using System.Text.Unicode;

namespace WebSocketFrontend.Protocol;

/// <summary>A parsed request body. Owns the JSON document its elements point into.</summary>
public sealed class ClientRequest(JsonDocument document, string action, string? requestIdJson, JsonElement parameters) : IDisposable
{
    public string Action { get; } = action;

    /// <summary>The request id as raw JSON (a string or a number), echoed unchanged in the reply.</summary>
    public string? RequestIdJson { get; } = requestIdJson;

    /// <summary>The <c>parameters</c> object; an empty object when the request has none.</summary>
    public JsonElement Parameters { get; } = parameters;

    /// <summary>
    /// What the transport that carried the request needs to route its reply (a Socket.IO acknowledgement id, say);
    /// null on <c>/ws</c>. See <see cref="FrameFormat"/>.
    /// </summary>
    public object? Context { get; set; }

    public void Dispose() => document.Dispose();
}

/// <summary>Why a frame is not a request, with whatever of the envelope could be read for the reply.</summary>
public sealed record RequestError(string Code, string Message, string? Action, string? RequestIdJson);

/// <summary>
/// Turns a text frame (the <c>/ws</c> envelope <c>{"event", "body"}</c>) or a body a transport has already taken out
/// of its own framing into a <see cref="ClientRequest"/>, or says precisely why not. Both check the body alike.
/// </summary>
public static class RequestParser
{
    /// <summary>Nesting allowed in a frame; deeper JSON is refused before it costs anything.</summary>
    public const int MaxDepth = 64;

    private static readonly JsonDocumentOptions Options = new()
    {
        MaxDepth = MaxDepth,
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement;

    /// <summary>Parses a whole <c>/ws</c> frame: the envelope and its body.</summary>
    public static bool TryParse(ReadOnlyMemory<byte> frame, out ClientRequest? request, out RequestError? error)
    {
        request = null;
        if (!TryParseDocument(frame, out var document, out error))
        {
            return false;
        }

        return Complete(document!, document!.RootElement, envelope: true, UnicodeText.AllStringsValid(frame.Span), out request, out error);
    }

    /// <summary>
    /// Checks a request body a transport has read out of its own framing (a Socket.IO event's argument), as the body
    /// of an envelope is checked. Takes <paramref name="document"/>, which <paramref name="body"/> points into: it is
    /// disposed with the request, or here when there is none. <paramref name="stringsValid"/> is
    /// <see cref="UnicodeText.AllStringsValid"/> of the bytes the document was parsed from.
    /// </summary>
    public static bool TryParseBody(JsonDocument document, JsonElement body, bool stringsValid, out ClientRequest? request, out RequestError? error)
    {
        ArgumentNullException.ThrowIfNull(document);
        return Complete(document, body, envelope: false, stringsValid, out request, out error);
    }

    /// <summary>Parses JSON with the limits every request has: valid UTF-8, bounded nesting, no duplicate names.</summary>
    public static bool TryParseDocument(ReadOnlyMemory<byte> json, out JsonDocument? document, out RequestError? error)
    {
        document = null;
        error = null;
        if (!Utf8.IsValid(json.Span))
        {
            error = new RequestError(ErrorCodes.BadRequest, "The frame is not valid UTF-8.", null, null);
            return false;
        }

        try
        {
            document = JsonDocument.Parse(json, Options);
            return true;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // The duplicate-name check unescapes every property name and throws InvalidOperationException,
            // not JsonException, for an escaped lone surrogate ("\uD800"), which no name can hold.
            error = new RequestError(ErrorCodes.BadRequest, $"The frame is not a JSON document: {ex.Message}", null, null);
            return false;
        }
    }

    private static bool Complete(JsonDocument document, JsonElement root, bool envelope, bool stringsValid, out ClientRequest? request, out RequestError? error)
    {
        request = null;
        error = null;
        string? action = null;
        string? requestIdJson = null;
        var parameters = EmptyObject;
        // Anywhere (information, payload, a token, a name), a string that is no valid text would be stored as it
        // came and break every reader of it later; reading one (comparing the event, say) throws.
        const string NotText = "A string in the request is not valid Unicode text (a lone UTF-16 surrogate).";
        try
        {
            error = envelope
                ? ReadEnvelope(root, ref action, ref requestIdJson, ref parameters)
                : ReadBareBody(root, ref action, ref requestIdJson, ref parameters);
            if (error is null && !stringsValid)
            {
                error = Bad(action, requestIdJson, NotText);
            }
        }
        catch (ProtocolException ex)
        {
            error = new RequestError(ex.Code, ex.Message, action, requestIdJson);
        }
        catch (InvalidOperationException) when (!stringsValid)
        {
            error = Bad(action, requestIdJson, NotText);
        }

        if (error is not null)
        {
            document.Dispose();
            return false;
        }

        request = new ClientRequest(document, action!, requestIdJson, parameters);
        return true;
    }

    private static RequestError? ReadBareBody(JsonElement body, ref string? action, ref string? requestIdJson, ref JsonElement parameters)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            return Bad(null, null, "The body must be a JSON object with 'action'.");
        }

        return ReadHeader(body, ref action, ref requestIdJson) ?? ReadRest(body, action, requestIdJson, ref parameters);
    }

    private static RequestError? ReadEnvelope(JsonElement root, ref string? action, ref string? requestIdJson, ref JsonElement parameters)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Bad(null, null, "The envelope must be a JSON object with 'event' and 'body'.");
        }

        // The body is read first so that an error about the event or the request id can still echo
        // the action and the request id, whichever of them the client got right.
        var hasBody = Json.TryGetProperty(root, "body", out var body) && body.ValueKind == JsonValueKind.Object;
        if (hasBody && ReadHeader(body, ref action, ref requestIdJson) is { } badId)
        {
            return badId;
        }

        if (!Json.TryGetProperty(root, "event", out var evt) || evt.ValueKind != JsonValueKind.String)
        {
            return Bad(action, requestIdJson, "The envelope needs 'event': \"client.to.instance\".");
        }

        if (!evt.ValueEquals(ProtocolOptions.RequestEvent))
        {
            return Bad(action, requestIdJson, $"Unknown event '{Json.GetString(evt, "event")}'; requests use \"client.to.instance\".");
        }

        if (!hasBody)
        {
            return Bad(action, requestIdJson, "The envelope needs a 'body' object.");
        }

        return ReadRest(body, action, requestIdJson, ref parameters);
    }

    /// <summary>Reads the action and the request id, so that any later error can echo them; an error only for a bad request id.</summary>
    private static RequestError? ReadHeader(JsonElement body, ref string? action, ref string? requestIdJson)
    {
        JsonElement id = default;
        var hasId = Json.TryGetProperty(body, "requestId", out id);
        if (hasId && id.ValueKind is JsonValueKind.String or JsonValueKind.Number)
        {
            // A request id that is no valid text is not echoed: strict parsers would refuse the reply.
            var raw = id.GetRawText();
            requestIdJson = id.ValueKind == JsonValueKind.Number || UnicodeText.RawStringValid(raw) ? raw : null;
        }

        if (Json.TryGetProperty(body, "action", out var act) && act.ValueKind == JsonValueKind.String)
        {
            action = Json.GetString(act, "action") is { Length: > 0 } name ? name : null;
        }

        if (hasId && requestIdJson is null)
        {
            return id.ValueKind == JsonValueKind.String
                ? Bad(action, null, "'requestId' is not valid Unicode text.")
                : Bad(action, requestIdJson, "'requestId' must be a string or a number.");
        }

        return null;
    }

    /// <summary>The rest of a body whose header was read: the action is required, the parameters must be an object.</summary>
    private static RequestError? ReadRest(JsonElement body, string? action, string? requestIdJson, ref JsonElement parameters)
    {
        if (action is null)
        {
            return Bad(action, requestIdJson, "The body needs an 'action' string.");
        }

        if (Json.TryGetProperty(body, "parameters", out var p))
        {
            if (p.ValueKind != JsonValueKind.Object)
            {
                return Bad(action, requestIdJson, "'parameters' must be a JSON object.");
            }

            parameters = p;
        }

        return null;
    }

    private static RequestError Bad(string? action, string? requestIdJson, string message) =>
        new(ErrorCodes.BadRequest, message, action, requestIdJson);
}
