<#
.SYNOPSIS
  Copy this computer's SEP client SyLink.xml to \\share\<COMPUTERNAME>\SyLink.xml for sepm-exporter.

.DESCRIPTION
  Run as a scheduled task (SYSTEM, at startup and daily) or from a computer-startup script. The copy
  goes to a temporary name first and is then renamed, so the exporter never reads a half-written file.
  SEP 12.1 keeps the file under CurrentVersion; SEP 14.x under a version folder (14.3.558.0000):
  the most recently written SyLink.xml wins. Nothing but SyLink.xml is copied; it holds no private key.

.EXAMPLE
  powershell.exe -NoProfile -ExecutionPolicy Bypass -File Copy-SyLink.ps1 -Share '\\files01\sepm-sylink$'
#>
param(
    [Parameter(Mandatory = $true)][string]$Share
)
$ErrorActionPreference = 'Stop'
$base = Join-Path $env:ProgramData 'Symantec\Symantec Endpoint Protection'
$source = Get-ChildItem -LiteralPath $base -Directory -ErrorAction SilentlyContinue |
    ForEach-Object { Join-Path $_.FullName 'Data\Config\SyLink.xml' } |
    Where-Object { Test-Path -LiteralPath $_ -PathType Leaf } |
    Sort-Object { (Get-Item -LiteralPath $_).LastWriteTimeUtc } -Descending |
    Select-Object -First 1
if (-not $source) { Write-Verbose 'No SEP client SyLink.xml on this computer'; exit 0 }

$target = Join-Path $Share $env:COMPUTERNAME
New-Item -ItemType Directory -Force -Path $target | Out-Null
$final = Join-Path $target 'SyLink.xml'
if ((Test-Path -LiteralPath $final) -and
    (Get-FileHash -LiteralPath $final).Hash -eq (Get-FileHash -LiteralPath $source).Hash) { exit 0 }
$temp = Join-Path $target ('.SyLink.xml.' + [guid]::NewGuid().ToString('N') + '.tmp')
Copy-Item -LiteralPath $source -Destination $temp -Force
Move-Item -LiteralPath $temp -Destination $final -Force
