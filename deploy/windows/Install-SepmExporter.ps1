<#
.SYNOPSIS
  Install or upgrade sepm-exporter from this offline bundle: a venv, nothing downloaded.

.DESCRIPTION
  Creates <Prefix>\venv with Python 3.11 or 3.12 and installs sepm-exporter and its pinned
  dependencies from the wheels beside this script: pip runs with --no-index (no network) and
  --require-hashes (every wheel must match its SHA-256 in requirements.txt). Puts the WinSW service
  definition beside the venv and, in C:\ProgramData\sepm-exporter, the config and the web config
  unless they exist (an upgrade keeps yours), and lets the service account write the state file and
  logs there. With -WinSW it also registers the service; a service that was running is stopped for
  the upgrade and started again. Run it from an elevated PowerShell.

.PARAMETER WinSW
  WinSW-x64.exe (your vetted copy): copied beside the venv as sepm-exporter-service.exe.

.PARAMETER Python
  python.exe 3.11 or 3.12, installed for all users; by default the newest the py launcher finds.

.PARAMETER ServiceAccount
  The account given Modify on the data folder: by default the installed service's own account
  (an upgrade keeps a gMSA set with sc.exe), else the XML's, LocalService.

.EXAMPLE
  powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\Install-SepmExporter.ps1 -WinSW C:\Tools\WinSW-x64.exe
#>
[CmdletBinding()]
param(
    [string]$WinSW = '',
    [string]$Python = '',
    [string]$Prefix = (Join-Path -Path $env:ProgramFiles -ChildPath 'sepm-exporter'),
    [string]$ServiceAccount = ''
)
$ErrorActionPreference = 'Stop'
$bundle = $PSScriptRoot
$serviceName = 'sepm-exporter'
$dataDir = Join-Path -Path $env:ProgramData -ChildPath 'sepm-exporter'
$supported = @('3.12', '3.11')  # the bundle holds wheels for these two only

function Get-PythonVersion([string]$Executable) {
    $version = & $Executable -c "import sys; print('%d.%d' % sys.version_info[:2])"
    if ($LASTEXITCODE -ne 0) { throw "$Executable did not run" }
    return "$version".Trim()
}

if (-not $Python) {
    foreach ($candidate in $supported) {
        try {
            $found = & py.exe "-$candidate" -c 'import sys; print(sys.executable)' 2>$null
        } catch {
            throw 'The py launcher is not installed: pass -Python with the path of python.exe 3.11 or 3.12'
        }
        if ($LASTEXITCODE -eq 0 -and $found) { $Python = "$found".Trim(); break }
    }
    if (-not $Python) { throw 'No Python 3.11 or 3.12 found by py.exe: install one for all users, or pass -Python' }
}
$version = Get-PythonVersion $Python
if ($supported -notcontains $version) { throw "$Python is Python $version; this bundle holds wheels for 3.11 and 3.12" }

$service = Get-Service -Name $serviceName -ErrorAction SilentlyContinue
$wasRunning = $service -and $service.Status -ne 'Stopped'
if (-not $ServiceAccount) {
    $installed = Get-CimInstance -ClassName Win32_Service -Filter "Name='$serviceName'"
    $ServiceAccount = if ($installed) { $installed.StartName } else { 'NT AUTHORITY\LocalService' }
}
if ($wasRunning) {
    Stop-Service -Name $serviceName
    $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(30))
}

# A venv cannot be moved (its launchers hold their own path): build it in place, from scratch.
$venv = Join-Path -Path $Prefix -ChildPath 'venv'
if (Test-Path -LiteralPath $venv) { Remove-Item -LiteralPath $venv -Recurse -Force }
New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
& $Python -m venv $venv
if ($LASTEXITCODE -ne 0) { throw "python -m venv $venv failed" }
$venvPython = Join-Path -Path $venv -ChildPath 'Scripts\python.exe'
& $venvPython -m pip install --no-index --find-links $bundle --require-hashes --only-binary ':all:' `
    --requirement (Join-Path -Path $bundle -ChildPath 'requirements.txt')
if ($LASTEXITCODE -ne 0) { throw 'pip install from the bundle failed' }
$exporter = Join-Path -Path $venv -ChildPath 'Scripts\sepm-exporter.exe'
& $exporter --version
if ($LASTEXITCODE -ne 0) { throw "$exporter --version failed" }

New-Item -ItemType Directory -Force -Path (Join-Path -Path $dataDir -ChildPath 'logs') | Out-Null
foreach ($name in @('config.yml', 'web-config.yml')) {
    $target = Join-Path -Path $dataDir -ChildPath $name
    if (-not (Test-Path -LiteralPath $target)) {
        Copy-Item -LiteralPath (Join-Path -Path $bundle -ChildPath $name) -Destination $target
    }
}
& icacls.exe $dataDir /grant "${ServiceAccount}:(OI)(CI)M" | Out-Null  # state.json and logs
if ($LASTEXITCODE -ne 0) { throw "icacls could not give $ServiceAccount write access to $dataDir" }

# The service definition: a changed one of yours is kept, the new one put beside it to compare.
$definition = Join-Path -Path $Prefix -ChildPath 'sepm-exporter-service.xml'
$shipped = Join-Path -Path $bundle -ChildPath 'sepm-exporter-service.xml'
if (-not (Test-Path -LiteralPath $definition)) {
    Copy-Item -LiteralPath $shipped -Destination $definition
} elseif ((Get-FileHash -LiteralPath $definition).Hash -ne (Get-FileHash -LiteralPath $shipped).Hash) {
    Copy-Item -LiteralPath $shipped -Destination "$definition.new" -Force
    Write-Warning "Kept your $definition; the bundle's is beside it as $definition.new"
}
$wrapper = Join-Path -Path $Prefix -ChildPath 'sepm-exporter-service.exe'
if ($WinSW) { Copy-Item -LiteralPath $WinSW -Destination $wrapper -Force }
if (-not (Test-Path -LiteralPath $wrapper)) {
    Write-Output "Installed. For the service, copy WinSW-x64.exe to $wrapper and run: & '$wrapper' install; & '$wrapper' start"
    exit 0
}
if (-not $service) {
    & $wrapper install
    if ($LASTEXITCODE -ne 0) { throw "$wrapper install failed" }
}
if ($wasRunning -or -not $service) {
    & $wrapper start
    if ($LASTEXITCODE -ne 0) { throw "$wrapper start failed" }
}
Write-Output "sepm-exporter service ready (Python $version): http://localhost:10877/ (config: $dataDir\config.yml)"
