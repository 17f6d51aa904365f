using System.Data;
using System.Text.RegularExpressions;
using Grains.Hosting;
using Grains.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.SqlServer.TransactSql.ScriptDom;
using Npgsql;
using Tests.Infrastructure;

namespace Tests.Databases;

/// <summary>
/// The schema scripts checked without a server where there is none: SQL Server's parse as T-SQL
/// (the scripts and every stored query), every provider stores each query key the Orleans
/// providers read, and each query uses only parameters the providers send. PostgreSQL's queries
/// are also prepared on the real server when one is configured.
/// </summary>
public sealed partial class SchemaScriptTests
{
    /// <summary>The parameters each provider call sends, by query key (Orleans 10.4.2).</summary>
    private static readonly Dictionary<string, string[]> ParametersSent = BuildParametersSent();

    /// <summary>The DbType each parameter is sent with.</summary>
    private static readonly Dictionary<string, DbType> ParameterTypes = new()
    {
        ["GrainIdHash"] = DbType.Int32, ["GrainIdN0"] = DbType.Int64, ["GrainIdN1"] = DbType.Int64,
        ["GrainTypeHash"] = DbType.Int32, ["GrainTypeString"] = DbType.String, ["GrainIdExtensionString"] = DbType.String,
        ["ServiceId"] = DbType.String, ["GrainStateVersion"] = DbType.Int32, ["PayloadBinary"] = DbType.Binary,
        ["DeploymentId"] = DbType.String, ["SiloName"] = DbType.String, ["HostName"] = DbType.String,
        ["Address"] = DbType.AnsiString, ["Port"] = DbType.Int32, ["Generation"] = DbType.Int32,
        ["ProxyPort"] = DbType.Int32, ["Status"] = DbType.Int32, ["Version"] = DbType.Int32,
        ["StartTime"] = DbType.DateTime, ["IAmAliveTime"] = DbType.DateTime, ["SuspectTimes"] = DbType.String,
    };

    [Fact]
    public void EverySqlServerScriptAndStoredQueryParsesAsTSql160()
    {
        var scripts = StorageDatabase.SchemaScripts(StorageProvider.SqlServer);
        Assert.NotEmpty(scripts);
        foreach (var (name, text) in scripts)
        {
            var script = ParseTSql(name, text);
            foreach (var (key, query) in SqlServerQueryRows(script))
            {
                ParseTSql($"{name}: {key}", query);
            }
        }
    }

    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.PostgreSql)]
    [InlineData(StorageProvider.SqlServer)]
    public void EachProviderStoresEveryQueryKeyTheOrleansProvidersRead(StorageProvider provider)
    {
        var rows = QueryRows(provider);

        var expected = provider == StorageProvider.Sqlite ? QueryKeys.Storage : QueryKeys.All;
        Assert.Equal(expected.Order(), rows.Select(r => r.Key).Order());
    }

    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.PostgreSql)]
    [InlineData(StorageProvider.SqlServer)]
    public void EveryStoredQueryUsesOnlyParametersTheProvidersSend(StorageProvider provider)
    {
        foreach (var (key, text) in QueryRows(provider))
        {
            var declared = Declared().Matches(text).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var used = ParametersIn(text).Where(p => !declared.Contains(p));
            Assert.All(used, p => Assert.Contains(p, ParametersSent[key]));
        }
    }

    [Fact]
    public void ServerScriptsTakeTheSchemaLockInsideTheirOwnTransaction()
    {
        foreach (var (name, text) in StorageDatabase.SchemaScripts(StorageProvider.PostgreSql))
        {
            var body = StripComments(text);
            Assert.Matches(@"^\s*BEGIN;\s*SELECT pg_advisory_xact_lock\(hashtext\('client-management schema'\)\);", body);
            Assert.Matches(@"COMMIT;\s*$", body);
            Assert.True(body.Contains("CREATE TABLE IF NOT EXISTS", StringComparison.Ordinal), name);
        }

        foreach (var (_, text) in StorageDatabase.SchemaScripts(StorageProvider.SqlServer))
        {
            var body = StripComments(text);
            Assert.Matches(@"^\s*SET XACT_ABORT ON;\s*BEGIN TRANSACTION;\s*DECLARE @lock int;\s*EXEC @lock = sp_getapplock @Resource = N'client-management schema'", body);
            Assert.Matches(@"COMMIT TRANSACTION;\s*$", body);
            Assert.DoesNotMatch(@"(?m)^\s*GO\s*$", body);
        }
    }

    [Fact]
    public async Task EveryPostgreSqlQueryPreparesOnTheServer()
    {
        DatabaseServer.PostgreSql.Require();
        await using var database = await DatabaseServer.PostgreSql.CreateDatabaseAsync();
        await StorageDatabase.ForServer(StorageProvider.PostgreSql, database.ConnectionString, "test", 30).ApplySchemaAsync(TestContext.Current.CancellationToken);
        var stored = await database.QueryAsync("SELECT QueryKey, QueryText FROM OrleansQuery");
        Assert.Equal(QueryKeys.All.Order(), stored.Select(r => (string)r[0]!).Order());

        await using var connection = (NpgsqlConnection)await database.OpenAsync();
        foreach (var row in stored)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = (string)row[1]!;
            foreach (var name in ParametersSent[(string)row[0]!])
            {
                command.Parameters.Add(new NpgsqlParameter { ParameterName = name, DbType = ParameterTypes[name], Value = DBNull.Value });
            }

            // Preparing makes the server parse and plan every statement against the real tables.
            await command.PrepareAsync(TestContext.Current.CancellationToken);
            await command.UnprepareAsync(TestContext.Current.CancellationToken);
        }
    }

    /// <summary>The (key, text) rows a provider's scripts store in OrleansQuery, read from the scripts themselves.</summary>
    private static List<(string Key, string Text)> QueryRows(StorageProvider provider)
    {
        var scripts = StorageDatabase.SchemaScripts(provider);
        switch (provider)
        {
            case StorageProvider.Sqlite:
                // Applied for real to an in-memory database: the rows as the provider would read them.
                using (var connection = new SqliteConnection("Data Source=:memory:"))
                {
                    connection.Open();
                    foreach (var (_, text) in scripts)
                    {
                        using var apply = connection.CreateCommand();
                        apply.CommandText = text;
                        apply.ExecuteNonQuery();
                    }

                    using var read = connection.CreateCommand();
                    read.CommandText = "SELECT QueryKey, QueryText FROM OrleansQuery";
                    using var reader = read.ExecuteReader();
                    var rows = new List<(string, string)>();
                    while (reader.Read())
                    {
                        rows.Add((reader.GetString(0), reader.GetString(1)));
                    }

                    return rows;
                }

            case StorageProvider.PostgreSql:
                return [.. scripts.SelectMany(s => PostgreSqlQueryRow().Matches(s.Text)).Select(m => (m.Groups[1].Value, m.Groups[2].Value))];
            case StorageProvider.SqlServer:
                return [.. scripts.SelectMany(s => SqlServerQueryRows(ParseTSql(s.Name, s.Text)))];
            default:
                throw new ArgumentOutOfRangeException(nameof(provider));
        }
    }

    private static TSqlFragment ParseTSql(string name, string text)
    {
        var fragment = new TSql160Parser(initialQuotedIdentifiers: true).Parse(new StringReader(text), out var errors);
        Assert.True(errors.Count == 0, $"{name}: {string.Join("; ", errors.Select(e => $"line {e.Line}: {e.Message}"))}");
        return fragment;
    }

    /// <summary>The VALUES rows of every MERGE INTO OrleansQuery in a parsed script.</summary>
    private static List<(string Key, string Text)> SqlServerQueryRows(TSqlFragment script)
    {
        var visitor = new QueryRowVisitor();
        script.Accept(visitor);
        return visitor.Rows;
    }

    private static IEnumerable<string> ParametersIn(string text) =>
        Parameter().Matches(StripComments(text)).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal);

    private static string StripComments(string text) => LineComment().Replace(text, string.Empty);

    private static Dictionary<string, string[]> BuildParametersSent()
    {
        string[] grain = ["GrainIdHash", "GrainIdN0", "GrainIdN1", "GrainTypeHash", "GrainTypeString", "GrainIdExtensionString", "ServiceId"];
        string[] member = ["DeploymentId", "Address", "Port", "Generation"];
        return new Dictionary<string, string[]>
        {
            ["ReadFromStorageKey"] = grain,
            ["WriteToStorageKey"] = [.. grain, "GrainStateVersion", "PayloadBinary"],
            ["ClearStorageKey"] = [.. grain, "GrainStateVersion"],
            ["DeleteStorageKey"] = [.. grain, "GrainStateVersion"],
            ["InsertMembershipVersionKey"] = ["DeploymentId"],
            ["MembershipReadAllKey"] = ["DeploymentId"],
            ["MembershipReadRowKey"] = member,
            ["InsertMembershipKey"] = [.. member, "IAmAliveTime", "SiloName", "HostName", "StartTime", "Status", "ProxyPort", "Version"],
            ["UpdateMembershipKey"] = [.. member, "IAmAliveTime", "Status", "SuspectTimes", "Version"],
            ["UpdateIAmAlivetimeKey"] = [.. member, "IAmAliveTime"],
            ["DeleteMembershipTableEntriesKey"] = ["DeploymentId"],
            ["CleanupDefunctSiloEntriesKey"] = ["DeploymentId", "IAmAliveTime"],
            ["GatewaysQueryKey"] = ["DeploymentId", "Status"],
        };
    }

    [GeneratedRegex(@"\(\s*'(\w+)',\s*\$query\$(.*?)\$query\$\s*\)", RegexOptions.Singleline)]
    private static partial Regex PostgreSqlQueryRow();

    [GeneratedRegex(@"(?<![@\w])@(\w+)")]
    private static partial Regex Parameter();

    [GeneratedRegex(@"DECLARE\s+@(\w+)", RegexOptions.IgnoreCase)]
    private static partial Regex Declared();

    [GeneratedRegex(@"--[^\n]*")]
    private static partial Regex LineComment();

    private sealed class QueryRowVisitor : TSqlFragmentVisitor
    {
        public List<(string Key, string Text)> Rows { get; } = [];

        public override void ExplicitVisit(MergeStatement node)
        {
            var specification = node.MergeSpecification;
            if (specification.Target is NamedTableReference { SchemaObject.BaseIdentifier.Value: "OrleansQuery" }
                && specification.TableReference is InlineDerivedTable source)
            {
                foreach (var row in source.RowValues)
                {
                    Assert.Equal(2, row.ColumnValues.Count);
                    var key = Assert.IsType<StringLiteral>(row.ColumnValues[0]).Value;
                    var text = Assert.IsType<StringLiteral>(row.ColumnValues[1]).Value;
                    Rows.Add((key, text));
                }
            }

            base.ExplicitVisit(node);
        }
    }
}
