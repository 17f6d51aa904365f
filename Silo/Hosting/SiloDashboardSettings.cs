using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Silo.Hosting;

/// <summary>The Orleans Dashboard served by a standalone silo, section <c>Dashboard</c>.</summary>
public sealed class SiloDashboardSettings
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Dashboard";

    /// <summary>Where the silo serves the dashboard, as the frontend does.</summary>
    public const string Path = "/dashboard";

    /// <summary>
    /// Collects the dashboard's figures and serves its page at <c>/dashboard</c> on <see cref="Urls"/>, behind
    /// the admin key (default false: the silo then opens no HTTP port at all).
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Where the silo listens for the dashboard, one or more <c>http://</c> or <c>https://</c> addresses separated
    /// by <c>;</c> (default <c>http://127.0.0.1:8080</c>: loopback only; set <c>http://0.0.0.0:8080</c> to reach it
    /// from other machines, behind the admin key, and preferably through a TLS proxy).
    /// </summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>The settings of <paramref name="configuration"/>, or an <see cref="OptionsValidationException"/> naming the bad value.</summary>
    public static SiloDashboardSettings Read(IConfiguration configuration)
    {
        var settings = configuration.GetSection(Section).Get<SiloDashboardSettings>() ?? new SiloDashboardSettings();
        if (settings.Enabled && Invalid(settings.Addresses()) is { } bad)
        {
            throw new OptionsValidationException(Section, typeof(SiloDashboardSettings),
                [$"Dashboard:Urls must be one or more absolute http:// or https:// addresses with a host, separated by ';' (got '{bad}')."]);
        }

        return settings;
    }

    /// <summary>The addresses of <see cref="Urls"/>.</summary>
    public string[] Addresses() => Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string? Invalid(string[] addresses)
    {
        if (addresses.Length == 0)
        {
            return string.Empty;
        }

        return addresses.FirstOrDefault(address =>
            !Uri.TryCreate(address, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || string.IsNullOrEmpty(uri.Host)
            || uri.AbsolutePath != "/"
            || !string.IsNullOrEmpty(uri.Query));
    }
}
