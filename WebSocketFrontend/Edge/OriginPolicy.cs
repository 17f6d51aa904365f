namespace WebSocketFrontend.Edge;

/// <summary>
/// Which pages may open a socket, from <c>Protocol:AllowedOrigins</c>. A request without an
/// <c>Origin</c> header comes from a device or a server, not a browser, and is always let in; a
/// browser page is let in when its origin is the gateway's own (the request's scheme, and the host and
/// port of its <c>Host</c> header) or listed; <c>*</c> lets every page in. Anything else
/// (another site, <c>null</c> from a sandboxed frame or a file) would let that page act with its
/// visitors' network position, so it is refused before the upgrade.
/// </summary>
public sealed class OriginPolicy
{
    private readonly bool _any;
    private readonly HashSet<string> _allowed;

    public OriginPolicy(IEnumerable<string> allowedOrigins)
    {
        var list = allowedOrigins.Select(o => o.Trim()).Where(o => o.Length > 0).ToList();
        _any = list.Contains("*");
        _allowed = new HashSet<string>(list.Where(o => o != "*").Select(o => Normalize(o) ?? o), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Whether a configured entry is <c>*</c> or an origin (<c>scheme://host[:port]</c>).</summary>
    public static bool IsValidEntry(string entry) => entry.Trim() == "*" || Normalize(entry.Trim()) is not null;

    /// <summary>Whether a request with these headers may be upgraded.</summary>
    public bool Allows(string? origin, string? host, bool isHttps)
    {
        if (origin is null || _any)
        {
            return true;
        }

        var normalized = Normalize(origin);
        if (normalized is null)
        {
            // "null", "file://" and anything unparsable: only '*' lets those in.
            return false;
        }

        return _allowed.Contains(normalized) || IsSameOrigin(normalized, host, isHttps);
    }

    private static bool IsSameOrigin(string origin, string? host, bool isHttps)
    {
        if (string.IsNullOrEmpty(host) || !Uri.TryCreate(origin, UriKind.Absolute, out var page)
            || !Uri.TryCreate((isHttps ? "https://" : "http://") + host, UriKind.Absolute, out var self))
        {
            return false;
        }

        return page.Scheme == self.Scheme && string.Equals(page.Host, self.Host, StringComparison.OrdinalIgnoreCase) && page.Port == self.Port;
    }

    /// <summary><c>scheme://host:port</c> in lower case with the port made explicit, or null when not an http(s) origin.</summary>
    private static string? Normalize(string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || string.IsNullOrEmpty(uri.Host) || uri.AbsolutePath is not ("/" or "") || uri.UserInfo.Length > 0)
        {
            return null;
        }

        return $"{uri.Scheme}://{uri.Host.ToLowerInvariant()}:{uri.Port}";
    }
}
