import AWSWire
import Foundation

/// Where a Bedrock provider's AWS credentials come from: the first link of the chain that
/// applies, in the order of the AWS SDKs for Rust and Go (botocore asks web identity before the
/// shared files; an EKS pod has no shared files, so the two orders agree where it matters):
///
/// 1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`;
/// 2. the profile in the shared credentials file, then in the config file (static keys, or
///    `role_arn` + `web_identity_token_file`);
/// 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA);
/// 4. the container credentials endpoint: `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
///    `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS, EKS Pod Identity).
///
/// The profile is the provider's `aws_profile`, else `AWS_PROFILE`, else `default`. An
/// `aws_profile` set in the configuration is a decision about this provider: like botocore
/// with an explicit profile, the environment's keys are then skipped and the profile must
/// exist and hold credentials. A profile named by `AWS_PROFILE` must exist; the `default`
/// profile may be absent or hold only settings such as `region`.
///
/// Its description (for `switchyard check` and logs) never shows a key or a token.
public enum AWSCredentialSource: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    case environment(AWSCredentials)
    /// Static keys from a profile, read once when the configuration is loaded.
    case profile(name: String, file: String, credentials: AWSCredentials)
    case webIdentity(AWSWebIdentity)
    case container(AWSContainerCredentials)

    /// Resolves the chain from the environment and the shared files, with no network.
    ///
    /// - Parameters:
    ///   - profile: The provider's `aws_profile`, nil when it has none.
    ///   - region: The provider's region, for the STS endpoint.
    public static func resolve(environment: [String: String], profile: String?, region: String) -> Result<AWSCredentialSource, CredentialError> {
        do throws(CredentialError) {
            return .success(try AWSCredentialChain(environment: environment, region: region).resolve(explicitProfile: profile))
        } catch {
            return .failure(error)
        }
    }

    /// Temporary credentials that expire and are fetched again; static ones never change.
    public var isRefreshed: Bool {
        switch self {
        case .environment, .profile: false
        case .webIdentity, .container: true
        }
    }

    public var description: String {
        switch self {
        case .environment: "aws: environment"
        case .profile(let name, let file, _): "aws: profile \(name) (\(file))"
        case .webIdentity(let identity): "aws: web identity (role \(identity.roleARN), STS \(identity.stsEndpoint))"
        case .container(let endpoint): "aws: container credentials endpoint (\(endpoint.displayURL))"
        }
    }

    public var debugDescription: String { description }
}

/// The walk behind ``AWSCredentialSource/resolve(environment:profile:region:)``.
private struct AWSCredentialChain {
    let environment: [String: String]
    let region: String
    let files: AWSSharedConfigFiles
    let source = "aws credentials"

    init(environment: [String: String], region: String) {
        self.environment = environment
        self.region = region
        self.files = AWSSharedConfigFiles(environment: environment)
    }

    func variable(_ name: String) -> String? {
        guard let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    func resolve(explicitProfile: String?) throws(CredentialError) -> AWSCredentialSource {
        if let explicitProfile {
            guard let found = try fromProfile(explicitProfile, mustExist: true) else {
                throw CredentialError(
                    .notConfigured, source: source,
                    message: "profile \(explicitProfile) (aws_profile) has no aws_access_key_id/aws_secret_access_key "
                        + "and no role_arn with web_identity_token_file in \(files.lookedIn)"
                )
            }
            return found
        }
        if let source = try fromEnvironmentKeys() { return source }
        let namedProfile = variable("AWS_PROFILE")
        if let source = try fromProfile(namedProfile ?? "default", mustExist: namedProfile != nil) { return source }
        if let source = try fromWebIdentityVariables() { return source }
        if let source = try fromContainerVariables() { return source }
        throw CredentialError(
            .notConfigured, source: source,
            message: "no AWS credentials found; looked for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, profile \(namedProfile ?? "default") "
                + "in \(files.lookedIn), AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, and AWS_CONTAINER_CREDENTIALS_FULL_URI or "
                + "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; set one of them, or name a profile with aws_profile"
        )
    }

    private func fromEnvironmentKeys() throws(CredentialError) -> AWSCredentialSource? {
        let keyID = variable("AWS_ACCESS_KEY_ID")
        let secret = variable("AWS_SECRET_ACCESS_KEY")
        switch (keyID, secret) {
        case (nil, nil):
            return nil
        case (let keyID?, let secret?):
            return .environment(try staticCredentials(keyID, secret, variable("AWS_SESSION_TOKEN"), from: "the environment"))
        case (nil, _):
            throw CredentialError(
                .notConfigured, source: source, message: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both or neither")
        case (_, nil):
            throw CredentialError(
                .notConfigured, source: source, message: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither")
        }
    }

    /// The profile's credentials: static keys from the credentials file, then from the config
    /// file, then `role_arn` + `web_identity_token_file`. nil when it holds none of these.
    private func fromProfile(_ name: String, mustExist: Bool) throws(CredentialError) -> AWSCredentialSource? {
        let profiles = [files.credentialsProfile(name), files.configProfile(name)].compactMap { $0 }
        if profiles.isEmpty {
            guard !mustExist else {
                throw CredentialError(.notConfigured, source: source, message: "profile \(name) is not in \(files.lookedIn)")
            }
            return nil
        }
        for profile in profiles {
            let keyID = profile["aws_access_key_id"]
            let secret = profile["aws_secret_access_key"]
            guard keyID != nil || secret != nil else { continue }
            guard let keyID, let secret else {
                throw CredentialError(
                    .notConfigured, source: source,
                    message: "profile \(name) in \(profile.file) has only one of aws_access_key_id and aws_secret_access_key; set both"
                )
            }
            let credentials = try staticCredentials(keyID, secret, profile["aws_session_token"], from: "profile \(name) in \(profile.file)")
            return .profile(name: name, file: profile.file, credentials: credentials)
        }
        for profile in profiles {
            guard let roleARN = profile["role_arn"] else { continue }
            guard let tokenFile = profile["web_identity_token_file"] else {
                throw CredentialError(
                    .notConfigured, source: source,
                    message: "profile \(name) in \(profile.file) assumes \(roleARN) from another profile or process, which Switchyard does not "
                        + "support; use static keys, web_identity_token_file, web identity variables or the container endpoint"
                )
            }
            return .webIdentity(
                AWSWebIdentity(roleARN: roleARN, tokenFile: tokenFile, sessionName: profile["role_session_name"], stsEndpoint: stsEndpoint)
            )
        }
        return nil
    }

    private func fromWebIdentityVariables() throws(CredentialError) -> AWSCredentialSource? {
        guard let tokenFile = variable("AWS_WEB_IDENTITY_TOKEN_FILE") else { return nil }
        guard let roleARN = variable("AWS_ROLE_ARN") else {
            throw CredentialError(
                .notConfigured, source: source, message: "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set the role to assume")
        }
        guard FileManager.default.fileExists(atPath: tokenFile) else {
            throw CredentialError(
                .notConfigured, source: source,
                message: "AWS_WEB_IDENTITY_TOKEN_FILE names \(tokenFile), which does not exist; check the service account's token mount"
            )
        }
        return .webIdentity(
            AWSWebIdentity(roleARN: roleARN, tokenFile: tokenFile, sessionName: variable("AWS_ROLE_SESSION_NAME"), stsEndpoint: stsEndpoint)
        )
    }

    private func fromContainerVariables() throws(CredentialError) -> AWSCredentialSource? {
        let url: String
        if let full = variable("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            guard AWSContainerCredentials.isAllowed(fullURI: full) else {
                throw CredentialError(
                    .notConfigured, source: source,
                    message: "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to loopback or the ECS/EKS agent "
                        + "(169.254.170.2, 169.254.170.23)"
                )
            }
            url = full
        } else if let relative = variable("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = AWSContainerCredentials.ecsHost + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else {
            return nil
        }
        let authorization: AWSContainerCredentials.Authorization
        if let file = variable("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            authorization = .tokenFile(file)
        } else if let token = variable("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            authorization = .token(token)
        } else {
            authorization = .none
        }
        return .container(AWSContainerCredentials(url: url, authorization: authorization))
    }

    /// As botocore: the service-specific `AWS_ENDPOINT_URL_STS`, else the global `AWS_ENDPOINT_URL`
    /// (one override for every AWS service, e.g. LocalStack), else STS in the provider's region.
    private var stsEndpoint: String {
        variable("AWS_ENDPOINT_URL_STS") ?? variable("AWS_ENDPOINT_URL") ?? AWSWebIdentity.regionalEndpoint(region: region)
    }

    private func staticCredentials(
        _ keyID: String, _ secret: String, _ token: String?, from place: String
    ) throws(CredentialError) -> AWSCredentials {
        guard [keyID, secret, token ?? "x"].allSatisfy(CredentialHTTP.isHeaderSafe) else {
            throw CredentialError(.notConfigured, source: source, message: "the AWS credentials in \(place) hold spaces or control characters")
        }
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }
}
