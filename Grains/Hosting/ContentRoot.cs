using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Grains.Hosting;

/// <summary>
/// Where a host (the gateway, a standalone silo) reads <c>appsettings.json</c> and resolves relative paths (the SQLite file):
/// the application's own directory, wherever the process was started from, unless the content
/// root is configured (<c>--contentRoot</c>, <c>ASPNETCORE_CONTENTROOT</c> or <c>DOTNET_CONTENTROOT</c>).
/// </summary>
public static class ContentRoot
{
    /// <summary>The configured content root, or <see cref="AppContext.BaseDirectory"/>.</summary>
    public static string Resolve(string[] args)
    {
        var configured = new ConfigurationBuilder()
            .AddEnvironmentVariables("DOTNET_")
            .AddEnvironmentVariables("ASPNETCORE_")
            .AddCommandLine(args)
            .Build()[HostDefaults.ContentRootKey];
        return string.IsNullOrEmpty(configured) ? AppContext.BaseDirectory : Path.GetFullPath(configured);
    }
}
