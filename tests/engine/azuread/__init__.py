"""A stand-in for the real Pulumi azuread provider plugin (``pulumi-resource-azuread``), for tests only.

**This is not the real provider.** The real one (``github.com/pulumi/pulumi-azuread/provider/v6``, a
Terraform bridge around ``terraform-provider-azuread`` v3) cannot be built in this environment, so the
end-to-end tests put this plugin on ``PATH`` under the same name. The engine uses an ambient plugin whatever
version the SDK asks for; this one reports version 6.11.1, the version of the installed ``pulumi_azuread``
Python SDK.

What it reproduces, read from terraform-provider-azuread v3 and the pulumi-azuread schema:

- the type tokens and the input and output property names of ``Application``, ``ServicePrincipal``,
  ``AppRoleAssignment``, ``ApplicationPassword`` and the function ``getServicePrincipal``, and the resource
  ids (``/applications/{objectId}``, ``/servicePrincipals/{objectId}``,
  ``/servicePrincipals/{resourceObjectId}/appRoleAssignedTo/{assignmentId}``,
  ``{applicationObjectId}/password/{keyId}``);
- the diff rules: stored outputs against new inputs, per-property ``detailedDiff``, replacement for the
  ForceNew arguments (every argument of AppRoleAssignment and ApplicationPassword, ``clientId`` of a
  ServicePrincipal), Optional+Computed arguments (``tags``, a password's ``displayName``/``startDate``/
  ``endDate``) that keep the live value when omitted, create-before-delete replacement;
- the Microsoft Graph calls upstream makes (v1.0; beta only where upstream reads ``oauth2RequirePostResponse``
  and ``samlMetadataUrl`` with ``$select``):
  owners bound at create with the caller included and removed afterwards unless configured, owner
  reconciliation on update, the display-name round trip after creating an application, the temporary
  description of a new service principal, ``addPassword``/``removePassword`` serialised per application,
  its consistency waits (five consistent reads after a password create and after deleting an application,
  a service principal or a password), and the
  retries on replication lag (404 while a new object replicates, read back until it shows);
- provider configuration with ``ARM_*`` fallbacks, endpoints from a metadata host
  (``/metadata/endpoints?api-version=2022-09-01``), the caller's object id from the token's ``oid`` claim;
- refresh (``Read`` with the old state) and ``pulumi import`` (``Read`` with only an id), 404 meaning gone;
- ``value`` of a password as a secret output; the client secret and tokens never in logs or errors.

What it does not do: any credential other than a client secret (Azure CLI, managed identity, OIDC and
certificates fail with a clear message); the arguments the program does not use and that would need more
Graph surface (``api``, ``appRoles``, ``web``, ``optionalClaims``, ``featureTags``, ``samlSingleSignOn``,
``templateId``, logos, ...: ``check`` rejects them); the plan-time duplicate-name check (it runs at apply
time only); nested ``detailedDiff`` paths (differences are reported per top-level property); every other
azuread resource and function. Consistency waits poll every ``POP3_OAUTH_STANDIN_POLL_SECONDS`` (0.2 s)
instead of upstream's 1-5 s, bounded by ``POP3_OAUTH_STANDIN_WAIT_SECONDS`` (60 s).
"""
